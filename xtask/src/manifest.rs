//! The chapter manifest, `course.toml`: the one list of chapters that every command reads.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// A test that may pass on the pristine starter, and why.
#[derive(Debug, Clone, Deserialize)]
pub struct Exemption {
    /// The test's name within its chapter module (e.g. `test_task1_...`).
    pub test: String,
    /// Why it is allowed to pass on stubs.
    pub reason: String,
}

/// One chapter of the course.
#[derive(Debug, Clone, Deserialize)]
pub struct Chapter {
    /// `weekW_dayD`; also the test module and file name.
    pub id: String,
    /// The chapter's title.
    pub title: String,
    /// The book page, without `.md` (`book/src/<book>.md`).
    pub book: String,
    /// The tasks, numbered from 1 in this order.
    pub tasks: Vec<String>,
    /// Tests allowed to pass on the pristine starter.
    #[serde(default)]
    pub stub_exempt: Vec<Exemption>,
    /// Parsed from `id`.
    #[serde(skip)]
    pub week: u32,
    /// Parsed from `id`.
    #[serde(skip)]
    pub day: u32,
}

impl Chapter {
    /// The test file, relative to `mini-lsm-tests/`.
    pub fn test_file(&self) -> String {
        format!("{}.rs", self.id)
    }

    /// "week 1 day 6".
    pub fn label(&self) -> String {
        format!("week {} day {}", self.week, self.day)
    }
}

#[derive(Deserialize)]
struct File {
    chapter: Vec<Chapter>,
}

/// Every chapter, in course order.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub chapters: Vec<Chapter>,
}

/// Parses `weekW_dayD`.
fn parse_id(id: &str) -> Option<(u32, u32)> {
    let rest = id.strip_prefix("week")?;
    let (week, day) = rest.split_once("_day")?;
    Some((week.parse().ok()?, day.parse().ok()?))
}

impl Manifest {
    /// Loads and checks `course.toml` at the workspace root.
    ///
    /// # Errors
    /// If the file is missing or malformed, an id is not `weekW_dayD`, or chapters are out of
    /// order or repeated.
    pub fn load(root: &Path) -> Result<Self> {
        let path = root.join("course.toml");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    /// Parses and checks a manifest.
    ///
    /// # Errors
    /// As [`Manifest::load`].
    pub fn parse(text: &str) -> Result<Self> {
        let file: File = toml::from_str(text)?;
        let mut chapters = file.chapter;
        for chapter in &mut chapters {
            let Some((week, day)) = parse_id(&chapter.id) else {
                bail!("chapter id `{}` is not of the form weekW_dayD", chapter.id);
            };
            chapter.week = week;
            chapter.day = day;
            if chapter.tasks.is_empty() {
                bail!("chapter {} has no tasks", chapter.id);
            }
        }
        for pair in chapters.windows(2) {
            if (pair[0].week, pair[0].day) >= (pair[1].week, pair[1].day) {
                bail!("chapter {} must come before {}", pair[1].id, pair[0].id);
            }
        }
        Ok(Self { chapters })
    }

    /// The index of chapter `id`.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.chapters.iter().position(|c| c.id == id)
    }

    /// The comma-separated list of chapter ids, for error messages.
    pub fn valid_ids(&self) -> String {
        self.chapters
            .iter()
            .map(|c| c.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The chapters selected by `--week W [--day D]`, as indices.
    ///
    /// # Errors
    /// If no chapter matches; the message lists the valid ones.
    pub fn select(&self, week: u32, day: Option<u32>) -> Result<Vec<usize>> {
        let found: Vec<usize> = self
            .chapters
            .iter()
            .enumerate()
            .filter(|(_, c)| c.week == week && day.is_none_or(|d| c.day == d))
            .map(|(i, _)| i)
            .collect();
        if found.is_empty() {
            let asked = match day {
                Some(d) => format!("week {week} day {d}"),
                None => format!("week {week}"),
            };
            bail!(
                "there is no chapter {asked} in course.toml; valid chapters: {}",
                self.valid_ids()
            );
        }
        Ok(found)
    }

    /// The one chapter `--week W --day D`.
    ///
    /// # Errors
    /// If it does not exist; the message lists the valid ones.
    pub fn select_one(&self, week: u32, day: u32) -> Result<usize> {
        Ok(self.select(week, Some(day))?[0])
    }

    /// Which chapter a test belongs to, from its module path (`...tests::week1_day3::test_x`).
    pub fn chapter_of_test(&self, test_name: &str) -> Option<usize> {
        self.chapters
            .iter()
            .position(|c| test_name.contains(&format!("tests::{}::", c.id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
[[chapter]]
id = "week1_day1"
title = "Memtable"
book = "week1-01-memtable"
tasks = ["a", "b"]

[[chapter]]
id = "week1_day2"
title = "Merge"
book = "week1-02-merge-iterator"
tasks = ["c"]
"#;

    /// Chapter ids are parsed into week and day, in course order.
    #[test]
    fn parses_ids_in_order() {
        let m = Manifest::parse(SAMPLE).unwrap();
        assert_eq!((m.chapters[1].week, m.chapters[1].day), (1, 2));
        assert_eq!(m.chapters[0].label(), "week 1 day 1");
    }

    /// An unknown chapter is an error that lists the valid ones.
    #[test]
    fn unknown_chapter_lists_valid_ones() {
        let m = Manifest::parse(SAMPLE).unwrap();
        let err = m.select(3, Some(1)).unwrap_err().to_string();
        assert!(err.contains("week 3 day 1"), "{err}");
        assert!(err.contains("week1_day1, week1_day2"), "{err}");
        assert_eq!(m.select(1, None).unwrap(), vec![0, 1]);
    }

    /// Chapters out of order are rejected.
    #[test]
    fn rejects_out_of_order() {
        let swapped = SAMPLE.replace("week1_day2", "week0_day9");
        assert!(Manifest::parse(&swapped).is_err());
    }

    /// Tests map to chapters by their module path.
    #[test]
    fn maps_tests_to_chapters() {
        let m = Manifest::parse(SAMPLE).unwrap();
        assert_eq!(
            m.chapter_of_test("mini-lsm-ref::mini_lsm$tests::week1_day2::test_task1_x"),
            Some(1)
        );
        assert_eq!(m.chapter_of_test("xtask::foo"), None);
    }
}
