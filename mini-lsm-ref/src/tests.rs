// Written by `cargo x sync` from course.toml: every chapter's tests, compiled from
// mini-lsm-tests/ in place (never copied), in chapter order.
#[path = "../../mini-lsm-tests/harness.rs"]
mod harness;
#[path = "../../mini-lsm-tests/week1_day1.rs"]
mod week1_day1;
#[path = "../../mini-lsm-tests/week1_day2.rs"]
mod week1_day2;
#[path = "../../mini-lsm-tests/week1_day3.rs"]
mod week1_day3;
#[path = "../../mini-lsm-tests/week1_day4.rs"]
mod week1_day4;
#[path = "../../mini-lsm-tests/week1_day5.rs"]
mod week1_day5;
#[path = "../../mini-lsm-tests/week1_day6.rs"]
mod week1_day6;
#[path = "../../mini-lsm-tests/week1_day7.rs"]
mod week1_day7;
#[path = "../../mini-lsm-tests/week2_day1.rs"]
mod week2_day1;
#[path = "../../mini-lsm-tests/week2_day2.rs"]
mod week2_day2;
#[path = "../../mini-lsm-tests/week2_day3.rs"]
mod week2_day3;
#[path = "../../mini-lsm-tests/week2_day4.rs"]
mod week2_day4;
#[path = "../../mini-lsm-tests/week2_day5.rs"]
mod week2_day5;
#[path = "../../mini-lsm-tests/week2_day6.rs"]
mod week2_day6;
#[path = "../../mini-lsm-tests/week2_day7.rs"]
mod week2_day7;
#[path = "../../mini-lsm-tests/week3_day1.rs"]
mod week3_day1;
#[path = "../../mini-lsm-tests/week3_day2.rs"]
mod week3_day2;
#[path = "../../mini-lsm-tests/week3_day3.rs"]
mod week3_day3;
#[path = "../../mini-lsm-tests/week3_day4.rs"]
mod week3_day4;
#[path = "../../mini-lsm-tests/week3_day5.rs"]
mod week3_day5;
#[path = "../../mini-lsm-tests/week3_day6.rs"]
mod week3_day6;
#[path = "../../mini-lsm-tests/week3_day7.rs"]
mod week3_day7;
#[path = "../../mini-lsm-tests/week4_day1.rs"]
mod week4_day1;
#[path = "../../mini-lsm-tests/week4_day2.rs"]
mod week4_day2;
#[path = "../../mini-lsm-tests/week4_day3.rs"]
mod week4_day3;
#[path = "../../mini-lsm-tests/week4_day4.rs"]
mod week4_day4;
#[path = "../../mini-lsm-tests/week4_day5.rs"]
mod week4_day5;
#[path = "../../mini-lsm-tests/week4_day6.rs"]
mod week4_day6;
#[path = "../../mini-lsm-tests/week4_day7.rs"]
mod week4_day7;
