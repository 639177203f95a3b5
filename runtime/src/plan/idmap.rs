//! The id maps of a new user namespace: which host uids and gids the container's ids are.

use serde::{Deserialize, Serialize};

/// The most lines the kernel takes in one `uid_map` or `gid_map` (Linux 4.15 and later).
pub const MAX_LINES: usize = 340;

/// One line of a uid or gid map: the `size` ids from `container_id` on, inside the user
/// namespace, are the `size` ids from `host_id` on, outside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMap {
    pub container_id: u32,
    pub host_id: u32,
    pub size: u32,
}

/// The maps of a new user namespace, written from outside it before it does anything.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMaps {
    pub uids: Vec<IdMap>,
    pub gids: Vec<IdMap>,
}

/// Why a map cannot be written: the index of the line at fault, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdMapError {
    #[error("the map is empty: map at least one range")]
    Empty,
    #[error("{lines} lines, more than the {MAX_LINES} the kernel takes")]
    TooManyLines { lines: usize },
    #[error("size must be at least 1")]
    ZeroSize,
    #[error("{side} ids {start} to {end} run past 4294967295")]
    PastTheEnd {
        side: &'static str,
        start: u32,
        end: u64,
    },
    #[error("{side} ids {start} to {end} overlap line {other}")]
    Overlap {
        side: &'static str,
        start: u32,
        end: u64,
        other: usize,
    },
}

impl IdMap {
    /// The `(first, last + 1)` ids of one side.
    fn range(&self, host: bool) -> (u64, u64) {
        let start = u64::from(if host {
            self.host_id
        } else {
            self.container_id
        });
        (start, start + u64::from(self.size))
    }

    /// The line the kernel reads: `container host size`.
    pub fn line(&self) -> String {
        format!("{} {} {}\n", self.container_id, self.host_id, self.size)
    }

    /// The host id of `id` inside, if this line maps it.
    pub fn to_host(&self, id: u32) -> Option<u32> {
        let offset = id.checked_sub(self.container_id)?;
        (offset < self.size).then(|| self.host_id + offset)
    }
}

/// Check a map as the kernel will: at least one and at most [`MAX_LINES`] lines, no empty
/// range, no range past the last id, and no two ranges overlapping on either side. On error,
/// the index of the line at fault.
pub fn check(map: &[IdMap]) -> Result<(), (Option<usize>, IdMapError)> {
    if map.is_empty() {
        return Err((None, IdMapError::Empty));
    }
    if map.len() > MAX_LINES {
        return Err((None, IdMapError::TooManyLines { lines: map.len() }));
    }
    for (i, line) in map.iter().enumerate() {
        if line.size == 0 {
            return Err((Some(i), IdMapError::ZeroSize));
        }
        for (host, side) in [(false, "container"), (true, "host")] {
            let (start, end) = line.range(host);
            let shown = |end: u64| (start as u32, end - 1);
            if end > 1 << 32 {
                let (start, end) = shown(end);
                return Err((Some(i), IdMapError::PastTheEnd { side, start, end }));
            }
            let overlapping = map[..i].iter().position(|earlier| {
                let (other_start, other_end) = earlier.range(host);
                start < other_end && other_start < end
            });
            if let Some(other) = overlapping {
                let (start, end) = shown(end);
                return Err((
                    Some(i),
                    IdMapError::Overlap {
                        side,
                        start,
                        end,
                        other,
                    },
                ));
            }
        }
    }
    Ok(())
}

/// The host id `id` inside is, through `map`.
pub fn to_host(map: &[IdMap], id: u32) -> Option<u32> {
    map.iter().find_map(|line| line.to_host(id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn line(container_id: u32, host_id: u32, size: u32) -> IdMap {
        IdMap {
            container_id,
            host_id,
            size,
        }
    }

    #[test]
    fn a_usual_map_holds_and_maps_ids() {
        let map = [line(0, 100_000, 65_536)];
        assert_eq!(check(&map), Ok(()));
        assert_eq!(to_host(&map, 0), Some(100_000));
        assert_eq!(to_host(&map, 65_535), Some(165_535));
        assert_eq!(to_host(&map, 65_536), None);
    }

    #[test]
    fn bad_maps_name_the_line() {
        let cases: [(&[IdMap], Option<usize>); 5] = [
            (&[], None),
            (&[line(0, 1, 0)], Some(0)),
            (&[line(0, u32::MAX, 2)], Some(0)),
            (&[line(0, 100, 10), line(5, 1000, 10)], Some(1)),
            (&[line(0, 100, 10), line(10, 105, 10)], Some(1)),
        ];
        for (map, at) in cases {
            let (index, error) = check(map).unwrap_err();
            assert_eq!(index, at, "{map:?}: {error}");
        }
        let (_, error) = check(&[line(0, 100, 10), line(5, 1000, 10)]).unwrap_err();
        assert_eq!(error.to_string(), "container ids 5 to 14 overlap line 0");
    }

    proptest! {
        /// Whatever the lines, `check` answers and never panics; what it accepts maps every
        /// id inside to exactly one host id.
        #[test]
        fn accepted_maps_are_one_to_one(lines in prop::collection::vec((any::<u32>(), any::<u32>(), 0u32..100), 0..5)) {
            let map: Vec<IdMap> = lines.iter().map(|&(c, h, s)| line(c, h, s)).collect();
            if check(&map).is_ok() {
                for l in &map {
                    prop_assert_eq!(to_host(&map, l.container_id), Some(l.host_id));
                }
            }
        }
    }
}
