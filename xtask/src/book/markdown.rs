//! The Markdown side of the listings: finding the fenced block an include sits in, shifting and
//! indenting code, and writing a solution spoiler so that mdBook renders its code as code.

use super::listings::SOLUTION_SUMMARY;

/// A collapsed spoiler holding `code` in a fenced block with info string `info`. mdBook renders
/// Markdown inside an HTML block only after a blank line, hence the blank lines around the fence.
pub(super) fn spoiler(label: &str, info: &str, code: &str) -> String {
    let longest_run = code
        .lines()
        .map(|l| l.trim_start().chars().take_while(|c| *c == '`').count())
        .max()
        .unwrap_or(0);
    let fence = "`".repeat(longest_run.max(2) + 1);
    format!(
        "<details class=\"solution\">\n{SOLUTION_SUMMARY}{label}</summary>\n\n{fence}{info}\n{}\n{fence}\n\n</details>\n",
        code.trim_end()
    )
}

/// A fenced code block of a page: its indentation, info string and the line that closes it
/// (0-based).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Fence<'a> {
    pub indent: &'a str,
    pub info: &'a str,
    pub close: usize,
}

/// For each line of a Markdown page, the fenced block it lies in (its opening and closing lines
/// included), if any. An unclosed fence runs to the end of the page.
pub(super) fn fences<'a>(lines: &[&'a str]) -> Vec<Option<Fence<'a>>> {
    let mut out = vec![None; lines.len()];
    let mut i = 0;
    while i < lines.len() {
        let Some((indent, marker, info)) = fence_open(lines[i]) else {
            i += 1;
            continue;
        };
        let close = (i + 1..lines.len())
            .find(|&j| {
                let t = lines[j].trim_start_matches(' ');
                lines[j].len() - t.len() <= indent.len() + 3
                    && t.starts_with(marker)
                    && t.trim_end()
                        .chars()
                        .all(|c| c == marker.chars().next().unwrap_or('`'))
            })
            .unwrap_or(lines.len() - 1);
        for slot in &mut out[i..=close] {
            *slot = Some(Fence {
                indent,
                info,
                close,
            });
        }
        i = close + 1;
    }
    out
}

/// The indentation, fence marker and info string of a line that opens a fenced code block.
fn fence_open(line: &str) -> Option<(&str, &str, &str)> {
    let trimmed = line.trim_start_matches(' ');
    let indent = &line[..line.len() - trimmed.len()];
    let c = trimmed.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let len = trimmed.chars().take_while(|x| *x == c).count();
    (len >= 3).then(|| (indent, &trimmed[..len], trimmed[len..].trim()))
}

/// `text` with `indent` before each non-blank line (the first too, if `first`).
pub(super) fn indent_lines(text: &str, indent: &str, first: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if (i > 0 || first) && !line.is_empty() {
            out.push_str(indent);
        }
        out.push_str(line);
    }
    out
}

/// `lines` shifted left by their common indentation (blank lines do not count), joined.
pub(super) fn dedent(lines: &[&str]) -> String {
    let indent = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out = String::new();
    for line in lines {
        out.push_str(line.get(indent..).unwrap_or("").trim_end());
        out.push('\n');
    }
    out
}

pub(super) fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A spoiler's fence is longer than any backtick run that opens a line of its code (which
    /// would close a shorter fence), and blank lines surround it inside the `<details>`.
    #[test]
    fn spoiler_fence_outlasts_the_code() {
        let out = spoiler(
            "label",
            "rust",
            "/// ```text\nlet s = r\"\n  ````\n\";\nfn f() {}\n",
        );
        assert!(
            out.starts_with(
                "<details class=\"solution\">\n<summary>Solution: label</summary>\n\n`````rust\n"
            ),
            "{out}"
        );
        assert!(out.ends_with("\nfn f() {}\n`````\n\n</details>\n"), "{out}");
    }

    /// Fences are found with their indentation, info and closing line; an unclosed one runs
    /// to the end; code is shifted left by its common indentation, blank lines aside.
    #[test]
    fn finds_fences_and_dedents() {
        let lines = ["a", "  ```rust,ignore", "  x", "  ```", "~~~", "y"];
        let found = fences(&lines);
        assert_eq!(found[0], None);
        assert_eq!(
            found[2],
            Some(Fence {
                indent: "  ",
                info: "rust,ignore",
                close: 3
            })
        );
        assert_eq!(found[5].map(|f| f.close), Some(5));
        assert_eq!(dedent(&["    a", "", "      b  "]), "a\n\n  b\n");
        assert_eq!(indent_lines("a\n\nb", "  ", false), "a\n\n  b");
    }
}
