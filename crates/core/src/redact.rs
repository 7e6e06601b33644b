//! Keeping secrets out of what enclave prints: URLs lose their user-info part
//! (`https://user:password@host` becomes `https://host`) before they reach an error or a log.

/// `text` with the user-info part of every URL in it removed.
pub fn url_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        // The authority runs to the first `/`, `?`, `#`, whitespace or quote.
        let end = after.find(|c: char| matches!(c, '/' | '?' | '#' | '"' | '\'' | '`') || c.is_whitespace());
        let authority = &after[..end.unwrap_or(after.len())];
        match authority.rfind('@') {
            Some(user_info_end) => out.push_str(&authority[user_info_end + 1..]),
            None => out.push_str(authority),
        }
        rest = &after[authority.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::url_credentials;

    #[test]
    fn user_info_is_removed_from_every_url_and_nothing_else_changes() {
        assert_eq!(
            url_credentials("dispatch failure: http://admin:hunter2@127.0.0.1:9/path and https://h.example/x"),
            "dispatch failure: http://127.0.0.1:9/path and https://h.example/x"
        );
        assert_eq!(url_credentials("endpoint `https://token@proxy:8443`"), "endpoint `https://proxy:8443`");
        assert_eq!(url_credentials("no url here: a@b"), "no url here: a@b");
        assert_eq!(url_credentials("http://user@"), "http://");
    }
}
