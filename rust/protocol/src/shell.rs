//! Paths in the shell commands messages suggest (`chmod 700 PATH`), quoted
//! so that pasting the command acts on that path and nothing else.

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

#[cfg(test)]
mod tests {
    use super::*;

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
