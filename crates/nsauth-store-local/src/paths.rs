//! The XDG base directories nsauth uses, looked up in one place.
//!
//! | what | variable | fallback |
//! |---|---|---|
//! | store key | `$XDG_CONFIG_HOME/nsauth` | `~/.config/nsauth` |
//! | default SQLite store | `$XDG_DATA_HOME/nsauth` | `~/.local/share/nsauth` |
//! | journal, audit log | `$XDG_STATE_HOME/nsauth` | `~/.local/state/nsauth` |
//!
//! As the XDG Base Directory specification says, an empty or relative value is ignored (a
//! relative path would name a different place in every working directory).

use std::path::PathBuf;

/// Which base directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Base {
    /// `$XDG_CONFIG_HOME`, else `~/.config`.
    Config,
    /// `$XDG_DATA_HOME`, else `~/.local/share`.
    Data,
    /// `$XDG_STATE_HOME`, else `~/.local/state`.
    State,
}

impl Base {
    fn variable(self) -> &'static str {
        match self {
            Base::Config => "XDG_CONFIG_HOME",
            Base::Data => "XDG_DATA_HOME",
            Base::State => "XDG_STATE_HOME",
        }
    }

    fn fallback(self) -> &'static str {
        match self {
            Base::Config => ".config",
            Base::Data => ".local/share",
            Base::State => ".local/state",
        }
    }
}

/// `<base>/nsauth`, or `None` when neither the XDG variable nor `HOME` gives an absolute path.
///
/// ```
/// use nsauth_store_local::paths::{nsauth_dir, Base};
/// if let Some(dir) = nsauth_dir(Base::State) {
///     assert!(dir.is_absolute() && dir.ends_with("nsauth"));
/// }
/// ```
pub fn nsauth_dir(base: Base) -> Option<PathBuf> {
    absolute_var(base.variable())
        .or_else(|| absolute_var("HOME").map(|h| h.join(base.fallback())))
        .map(|b| b.join("nsauth"))
}

/// The value of `name` when it is set to an absolute path.
pub fn absolute_var(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}
