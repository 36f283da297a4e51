//! Entry-path sanitising: whatever the bytes, an accepted path is relative, has no
//! `..`/`.`/empty components, no backslash or NUL, and sanitising it again is a no-op.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    if let Ok(p) = takeout::sanitize_entry_path(&raw) {
        let s = p.as_str();
        assert!(!s.is_empty());
        assert!(!s.starts_with('/'));
        assert!(!s.contains('\\') && !s.contains('\0'));
        assert!(!s.chars().any(char::is_control));
        let b = s.as_bytes();
        assert!(!(b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':'));
        for c in p.components() {
            assert!(!c.is_empty() && c != "." && c != "..", "{s:?}");
        }
        assert_eq!(takeout::sanitize_entry_path(s).as_ref(), Ok(&p));
    }
});
