//! Text shown to people (a receiver's answer in a delivery's error, a
//! webhook's folder): which characters would make it read otherwise than
//! it is.

/// Whether `c` is invisible or reorders the text around it, though it is
/// no control character: bidirectional overrides, embeddings, isolates
/// and marks (U+202E shows `txt.exe` as `exe.txt`), zero-width characters
/// and joiners, line and paragraph separators, the byte-order mark, the
/// soft hyphen, invisible operators, fillers and tag characters.
pub fn misleads(c: char) -> bool {
    matches!(
        c,
        '\u{00ad}'
            | '\u{034f}'
            | '\u{061c}'
            | '\u{115f}'..='\u{1160}'
            | '\u{17b4}'..='\u{17b5}'
            | '\u{180b}'..='\u{180f}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}'
            | '\u{3164}'
            | '\u{fe00}'..='\u{fe0f}'
            | '\u{feff}'
            | '\u{ffa0}'
            | '\u{fff9}'..='\u{fffb}'
            | '\u{e0000}'..='\u{e0fff}'
    )
}

#[cfg(test)]
mod tests {
    use super::misleads;

    #[test]
    fn hidden_and_reordering_characters_mislead_and_text_does_not() {
        for c in ['\u{202e}', '\u{2066}', '\u{061c}', '\u{200b}', '\u{2028}', '\u{feff}', '\u{00ad}', '\u{e0041}'] {
            assert!(misleads(c), "{:04x}", c as u32);
        }
        for c in "Grüße, 東京 — ok! é".chars() {
            assert!(!misleads(c), "{c}");
        }
    }
}
