//! HTML text escaped as maud escapes it, a run at a time.

/// `&`, `<`, `>` and `"` escaped exactly as maud escapes them, copying the runs between those
/// bytes instead of pushing a byte at a time (maud's own way): SAML messages, URLs and traces
/// written into pages are kilobytes to megabytes.
pub struct Escaped<'a>(pub &'a str);

impl maud::Render for Escaped<'_> {
    fn render_to(&self, out: &mut String) {
        let s = self.0;
        let mut from = 0;
        while let Some(i) = next_special(s.as_bytes(), from) {
            let rep = match s.as_bytes()[i] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                _ => "&quot;",
            };
            out.push_str(&s[from..i]);
            out.push_str(rep);
            from = i + 1;
        }
        out.push_str(&s[from..]);
    }
}

/// The index of the first `&`, `<`, `>` or `"` at or after `from`, eight bytes at a time (a
/// base64 message has none in its kilobytes).
fn next_special(b: &[u8], from: usize) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    // The high bit of each byte of `x` equal to `c`: exact for the lowest such byte, which
    // is the only one read (the borrow can only mark bytes above it).
    let eq = |x: u64, c: u8| {
        let y = x ^ (LO * u64::from(c));
        y.wrapping_sub(LO) & !y & HI
    };
    let mut i = from;
    while let Some(chunk) = b.get(i..i + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let x = u64::from_le_bytes(w);
        let m = eq(x, b'&') | eq(x, b'<') | eq(x, b'>') | eq(x, b'"');
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    b.get(i..)?
        .iter()
        .position(|c| matches!(c, b'&' | b'<' | b'>' | b'"'))
        .map(|p| i + p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use maud::Render;

    #[test]
    fn escapes_as_maud_escapes() {
        for t in [
            "",
            "plain",
            "<a href=\"x?y=1&z=2\">è ü 😀</a>",
            "&&<<>>\"\"",
            "tail<",
            "0123456789abcdef<0123456789\"abcdef&",
            "eight ch>nine&char",
            "a long run of text without any of them, then one at the end\"",
        ] {
            let mut ours = String::new();
            Escaped(t).render_to(&mut ours);
            assert_eq!(ours, t.render().into_string(), "{t}");
        }
        // Every position in and around an eight-byte word, every byte escaped or not.
        for len in 0..20 {
            for at in 0..len {
                for c in ['&', '<', '>', '"', 'x', 'è'] {
                    let mut t: String = "abcdefghijklmnopqrstuvwxyz".chars().take(len).collect();
                    t.replace_range(at..at + 1, &c.to_string());
                    let mut ours = String::new();
                    Escaped(&t).render_to(&mut ours);
                    assert_eq!(ours, t.render().into_string(), "{t}");
                }
            }
        }
    }
}
