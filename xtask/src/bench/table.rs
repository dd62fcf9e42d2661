//! Markdown tables and the number formats of the report.

/// A GitHub-flavoured markdown table; the first column is left-aligned, the rest right-aligned.
/// Cells have `|` escaped; short rows are padded with empty cells.
pub fn markdown_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let cols = headers.len();
    let escape = |s: &str| s.replace('|', "\\|");
    let mut out = String::new();
    out.push_str("| ");
    out.push_str(
        &headers
            .iter()
            .map(|h| escape(h))
            .collect::<Vec<_>>()
            .join(" | "),
    );
    out.push_str(" |\n|");
    for i in 0..cols {
        out.push_str(if i == 0 { " --- |" } else { " ---: |" });
    }
    out.push('\n');
    for row in rows {
        let cells: Vec<String> = (0..cols)
            .map(|i| row.get(i).map_or_else(String::new, |c| escape(c)))
            .collect();
        out.push_str("| ");
        out.push_str(&cells.join(" | "));
        out.push_str(" |\n");
    }
    out
}

/// The placeholder for a figure that was not measured.
pub const MISSING: &str = "—";

/// Milliseconds with precision that suits their size: `12.34`, `385.1`, `5712`.
pub fn ms(v: Option<f64>) -> String {
    match v {
        Some(x) if x < 100.0 => format!("{x:.2}"),
        Some(x) if x < 1000.0 => format!("{x:.1}"),
        Some(x) => format!("{x:.0}"),
        None => MISSING.into(),
    }
}

/// A ratio as `2.31x`.
pub fn ratio(v: Option<f64>) -> String {
    v.map_or_else(|| MISSING.into(), |x| format!("{x:.2}x"))
}

/// MiB with one decimal.
pub fn mib(v: Option<f64>) -> String {
    v.map_or_else(|| MISSING.into(), |x| format!("{x:.1}"))
}

/// A rate as a whole number with thousands separated by a thin space: `10 636`.
pub fn rate(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() && x >= 0.0 => group_thousands(x.round() as u64),
        _ => MISSING.into(),
    }
}

fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{2009}');
        }
        out.push(c);
    }
    out
}

/// "yes" / "no" / "not measured".
pub fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "**yes**",
        Some(false) => "**no**",
        None => "not measured",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_table_with_alignment_and_escapes() {
        let t = markdown_table(
            &["case", "ms"],
            &[vec!["a|b".into(), "1.00".into()], vec!["short row".into()]],
        );
        let want = "| case | ms |\n| --- | ---: |\n| a\\|b | 1.00 |\n| short row |  |\n";
        assert_eq!(t, want);
    }

    #[test]
    fn formats_numbers() {
        assert_eq!(ms(Some(12.345)), "12.35");
        assert_eq!(ms(Some(385.08)), "385.1");
        assert_eq!(ms(Some(5712.4)), "5712");
        assert_eq!(ms(None), MISSING);
        assert_eq!(ratio(Some(2.3149)), "2.31x");
        assert_eq!(mib(Some(53.71)), "53.7");
        assert_eq!(rate(Some(10636.55)), "10\u{2009}637");
        assert_eq!(rate(Some(999.0)), "999");
        assert_eq!(rate(Some(1_000_000.0)), "1\u{2009}000\u{2009}000");
        assert_eq!(verdict(Some(false)), "**no**");
    }
}
