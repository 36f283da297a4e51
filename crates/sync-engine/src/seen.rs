//! What a full listing saw, kept in memory instead of in the index.
//!
//! Removal detection needs "which known items did this complete listing not contain". Marking
//! each record in the index would rewrite every record on every full rescan, and sled appends
//! each rewrite to its log (the index would grow several-fold until its cleaner caught up).
//! Instead a full listing keeps 8 bytes per listing entry here (an item in k albums appears
//! 1 + k times until [`SeenSet::seal`] deduplicates): a million items cost about 8 MB, for the
//! duration of one run.
//!
//! Two ids sharing a 64-bit hash would make a removed item look seen: it would be kept one
//! more cycle — the safe direction. With a million items the odds are about 3 in 100 million.

use crate::types::MediaId;

/// The set of media ids one listing returned.
pub(crate) struct SeenSet {
    hashes: Vec<u64>,
    enabled: bool,
    sealed: bool,
}

fn hash(id: &MediaId) -> u64 {
    u64::from_le_bytes(crate::index::hash8(id.as_str()))
}

impl SeenSet {
    /// A set that records only when `enabled` (incremental runs detect no removals and need
    /// no memory for this).
    pub(crate) fn new(enabled: bool) -> Self {
        SeenSet {
            hashes: Vec::new(),
            enabled,
            sealed: false,
        }
    }

    /// Records that the listing returned `id` (items repeat across albums: duplicates are fine).
    pub(crate) fn insert(&mut self, id: &MediaId) {
        if self.enabled {
            self.hashes.push(hash(id));
            self.sealed = false;
        }
    }

    /// Sorts for lookups; call once listing is over.
    pub(crate) fn seal(&mut self) {
        self.hashes.sort_unstable();
        self.hashes.dedup();
        self.hashes.shrink_to_fit();
        self.sealed = true;
    }

    /// Whether the listing returned `id`. Only meaningful after [`Self::seal`]; a set that is
    /// disabled or unsealed answers `true` (it cannot prove an item missing).
    pub(crate) fn contains(&self, id: &MediaId) -> bool {
        if !self.enabled || !self.sealed {
            return true;
        }
        self.hashes.binary_search(&hash(id)).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_finds_what_was_listed_and_only_that() {
        let mut seen = SeenSet::new(true);
        for i in 0..1000 {
            seen.insert(&MediaId::new(format!("item-{i}")));
        }
        seen.insert(&MediaId::new("item-7")); // again, through an album
        seen.seal();
        assert!(seen.contains(&MediaId::new("item-7")));
        assert!(seen.contains(&MediaId::new("item-999")));
        assert!(!seen.contains(&MediaId::new("item-1000")));
        assert_eq!(seen.hashes.len(), 1000);
    }

    #[test]
    fn a_disabled_or_unsealed_set_never_reports_an_item_missing() {
        let disabled = SeenSet::new(false);
        assert!(disabled.contains(&MediaId::new("anything")));
        let mut unsealed = SeenSet::new(true);
        unsealed.insert(&MediaId::new("a"));
        assert!(unsealed.contains(&MediaId::new("b")));
    }
}
