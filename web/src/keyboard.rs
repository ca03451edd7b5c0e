//! Keys the combobox handles, and how they move the active result.

/// A key the search box reacts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Down,
    Up,
    Enter,
    Escape,
}

impl Key {
    /// Maps `KeyboardEvent.key`; other keys keep their default behaviour (typing, caret moves).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "ArrowDown" | "Down" => Some(Self::Down),
            "ArrowUp" | "Up" => Some(Self::Up),
            "Enter" => Some(Self::Enter),
            "Escape" | "Esc" => Some(Self::Escape),
            _ => None,
        }
    }
}

/// The active result after an arrow key, wrapping at both ends; `None` while the list is empty.
pub fn step(active: Option<usize>, len: usize, key: Key) -> Option<usize> {
    if len == 0 {
        return None;
    }
    match (key, active) {
        (Key::Down, None) => Some(0),
        (Key::Down, Some(i)) => Some((i + 1) % len),
        (Key::Up, None | Some(0)) => Some(len - 1),
        (Key::Up, Some(i)) => Some(i.min(len) - 1),
        (Key::Enter | Key::Escape, _) => active.filter(|&i| i < len),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrows_wrap_around() {
        assert_eq!(step(None, 3, Key::Down), Some(0));
        assert_eq!(step(Some(2), 3, Key::Down), Some(0));
        assert_eq!(step(None, 3, Key::Up), Some(2));
        assert_eq!(step(Some(0), 3, Key::Up), Some(2));
        assert_eq!(step(Some(2), 3, Key::Up), Some(1));
        assert_eq!(step(Some(7), 3, Key::Up), Some(2));
    }

    #[test]
    fn empty_list_has_no_active_result() {
        for key in [Key::Down, Key::Up, Key::Enter, Key::Escape] {
            assert_eq!(step(Some(1), 0, key), None);
        }
    }
}
