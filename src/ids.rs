//! Record ids: ULIDs from one monotonic generator, so ids made by this process sort in
//! creation order even within one millisecond (the default list order relies on it).

use std::sync::Mutex;

use ulid::{Generator, Ulid};

static GENERATOR: Mutex<Generator> = Mutex::new(Generator::new());

/// A new id, greater than every id this process made before.
pub fn new_id() -> String {
    let next = GENERATOR
        .lock()
        .ok()
        .and_then(|mut g| g.generate().ok())
        // Only reachable after 2^80 ids in one millisecond or a poisoned lock.
        .unwrap_or_else(Ulid::generate);
    next.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_strictly_and_have_26_chars() {
        let ids: Vec<String> = (0..1000).map(|_| new_id()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert!(ids.iter().all(|i| i.len() == 26));
    }
}
