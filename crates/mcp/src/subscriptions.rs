//! The resources downstream clients subscribed to on one server, counted: the upstream is asked
//! once per resource, however many clients want it, and let go when the last one does.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, PoisonError},
};

/// Shared by every upstream built for one server (an idle stop or a new definition replaces the
/// upstream, not its subscriptions), so that a new upstream asks for them all again. Cheap to
/// clone; clones share the counts.
#[derive(Debug, Clone, Default)]
pub struct ResourceSubscriptions(Arc<Mutex<BTreeMap<String, usize>>>);

impl ResourceSubscriptions {
    fn counts(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, usize>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts one more subscriber of `uri`; whether it is the first.
    pub(crate) fn add(&self, uri: &str) -> bool {
        let mut counts = self.counts();
        let count = counts.entry(uri.to_string()).or_default();
        *count += 1;
        *count == 1
    }

    /// Counts one subscriber of `uri` fewer; whether it was the last.
    pub fn remove(&self, uri: &str) -> bool {
        let mut counts = self.counts();
        let Some(count) = counts.get_mut(uri) else {
            return false;
        };
        *count -= 1;
        if *count > 0 {
            return false;
        }
        counts.remove(uri);
        true
    }

    /// Whether nobody subscribed to anything.
    pub fn is_empty(&self) -> bool {
        self.counts().is_empty()
    }

    /// Every resource someone subscribed to.
    pub(crate) fn uris(&self) -> Vec<String> {
        self.counts().keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_subscriber_and_the_last_are_told_apart() {
        let subscriptions = ResourceSubscriptions::default();
        assert!(subscriptions.add("test://a"));
        assert!(!subscriptions.add("test://a"));
        assert!(subscriptions.add("test://b"));
        assert_eq!(subscriptions.uris(), ["test://a", "test://b"]);
        assert!(!subscriptions.remove("test://a"));
        assert!(subscriptions.remove("test://a"));
        assert!(
            !subscriptions.remove("test://a"),
            "nobody is left to remove"
        );
        assert_eq!(subscriptions.uris(), ["test://b"]);
    }
}
