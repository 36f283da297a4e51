//! Folding per-entry records into assets by content, as the engine does while it hashes
//! the bytes it streams (§4.7 step 4). The same photo appears in its year folder and in
//! every album folder (§2.5), possibly in different parts (§1.2).

use std::collections::{BTreeMap, BTreeSet};

use crate::import::{AlbumKey, EntryLocator, MediaRecord, MotionRole};

/// A content hash chosen by the caller (e.g. BLAKE3 of the bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContentKey(pub [u8; 32]);

/// One distinct piece of content and everything known about its copies.
#[derive(Debug, Clone, PartialEq)]
pub struct MergedAsset {
    /// The content key.
    pub content: ContentKey,
    /// Every entry with these bytes, in the order added.
    pub entries: Vec<EntryLocator>,
    /// Union of the albums of all copies.
    pub albums: BTreeSet<AlbumKey>,
    /// The record with the most trustworthy metadata (sidecar-dated, then highest
    /// confidence), with missing fields filled from the other copies.
    pub best: MediaRecord,
    /// True when any copy is the video half of a motion photo: not a separate timeline item.
    pub motion_video: bool,
    /// True when every copy is an edited copy.
    pub edited: bool,
}

/// Accumulates [`MergedAsset`]s.
#[derive(Debug, Clone, Default)]
pub struct AssetMerger {
    assets: BTreeMap<ContentKey, MergedAsset>,
}

impl AssetMerger {
    /// An empty merger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one streamed entry.
    pub fn add(&mut self, record: &MediaRecord, content: ContentKey) {
        let is_video = matches!(record.motion, Some((MotionRole::Video, _)));
        let edited = record
            .flags
            .contains(&crate::import::RecordFlag::EditedCopy);
        match self.assets.get_mut(&content) {
            Some(a) => {
                a.entries.push(record.locator.clone());
                a.albums.extend(record.album.clone());
                a.motion_video |= is_video;
                a.edited &= edited;
                // Sidecar copies in album folders may differ from the year-folder copy
                // (§2.3): keep the best record, then fill its gaps from the others.
                let (mut best, other) = if rank(record) < rank(&a.best) {
                    (record.clone(), a.best.clone())
                } else {
                    (a.best.clone(), record.clone())
                };
                fill_gaps(&mut best, &other);
                a.best = best;
            }
            None => {
                self.assets.insert(
                    content,
                    MergedAsset {
                        content,
                        entries: vec![record.locator.clone()],
                        albums: record.album.clone().into_iter().collect(),
                        best: record.clone(),
                        motion_video: is_video,
                        edited,
                    },
                );
            }
        }
    }

    /// The assets, ordered by content key.
    pub fn assets(&self) -> impl Iterator<Item = &MergedAsset> {
        self.assets.values()
    }

    /// Number of distinct assets.
    pub fn len(&self) -> usize {
        self.assets.len()
    }

    /// True when nothing was added.
    pub fn is_empty(&self) -> bool {
        self.assets.is_empty()
    }
}

fn rank(r: &MediaRecord) -> (bool, crate::dates::Confidence, bool, EntryLocator) {
    (
        r.sidecar.is_none(),
        r.confidence,
        r.album.is_some(),
        r.locator.clone(),
    )
}

fn fill_gaps(best: &mut MediaRecord, other: &MediaRecord) {
    if best.description.is_none() {
        best.description.clone_from(&other.description);
    }
    if best.position.is_none() {
        best.position = other.position;
        best.google_position = other.google_position;
    }
    if best.taken.is_none() {
        best.taken = other.taken;
    }
    if best.url.is_none() {
        best.url.clone_from(&other.url);
    }
    best.favorited |= other.favorited;
    for p in &other.people {
        if !best.people.contains(p) {
            best.people.push(p.clone());
        }
    }
}
