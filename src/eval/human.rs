//! Human evaluation: the blind two-alternative forced-choice (2-AFC) test.
