//! Paths in the shell commands messages suggest (`chmod 700 PATH`), quoted
//! so that pasting the command acts on that path and nothing else; and
//! another process's text (a lease's label) as one plain line.

use std::path::Path;

/// `path` as one shell word: as it is when every character is plainly
/// safe, else in single quotes (a `'` inside as `'\''`). A path with a
/// space or a `$` pasted unquoted would act on other files.
pub fn word(path: impl AsRef<Path>) -> String {
    let text = path.as_ref().to_string_lossy();
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+:=@,%".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        return text.into_owned();
    }
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The most characters of a lease's label kept ([`one_line`]).
pub const MAX_LABEL_CHARS: usize = 200;

/// Text another process gave (a lease's label) as one line that a terminal
/// or a log shows as it is: each control character (a newline, an escape
/// that would retitle or redraw the terminal, a carriage return) as its
/// escape (`\n`, `\u{1b}`), and at most `max_chars` of it, the rest as `...`.
pub fn one_line(text: &str, max_chars: usize) -> String {
    let mut line = String::with_capacity(text.len().min(max_chars));
    for (i, c) in text.chars().enumerate() {
        if i == max_chars {
            line.push_str("...");
            break;
        }
        if c.is_control() {
            line.extend(c.escape_default());
        } else {
            line.push(c);
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_processs_text_is_one_plain_line() {
        assert_eq!(one_line("spfs shell 42", 200), "spfs shell 42");
        assert_eq!(
            one_line("x\u{1b}]0;PWNED\u{7}\nstate      stopped\r", 200),
            "x\\u{1b}]0;PWNED\\u{7}\\nstate      stopped\\r"
        );
        assert_eq!(one_line("é\ttab", 200), "é\\ttab");
        assert_eq!(one_line("abcdef", 3), "abc...");
        assert_eq!(one_line("abc", 3), "abc");
    }

    #[test]
    fn a_path_is_one_shell_word() {
        assert_eq!(word("/tmp/spfs-1000/state"), "/tmp/spfs-1000/state");
        assert_eq!(word("/tmp/my state"), "'/tmp/my state'");
        assert_eq!(word("/tmp/log dir é"), "'/tmp/log dir é'");
        assert_eq!(word("/tmp/it's $HOME"), r"'/tmp/it'\''s $HOME'");
        assert_eq!(word(""), "''");
        // What sh makes of it: the one path back.
        for path in ["/tmp/my state", "/tmp/it's $HOME; rm -rf x", "/a`b`"] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", word(path)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), path);
        }
    }
}
