//! Inline images: protocol choice (kitty, sixel, iTerm2, halfblocks, off) and a cache of
//! encoded images filled by a worker thread, so decoding and encoding never block input.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::widgets::Paragraph;
use ratatui_image::picker::{Picker, ProtocolType};
use ratatui_image::protocol::Protocol;
use ratatui_image::{Image, Resize};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};

/// `--image-protocol`: how images are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImageProtocol {
    /// Pick from the environment: kitty in kitty/Ghostty, iTerm2 in iTerm2/WezTerm, otherwise
    /// (and always inside tmux or screen) halfblocks.
    Auto,
    /// Kitty graphics protocol.
    Kitty,
    /// Sixel graphics.
    Sixel,
    /// iTerm2 inline images.
    Iterm2,
    /// Unicode half blocks with colours: works over any SSH session.
    Halfblocks,
    /// No images, only their file names.
    Off,
}

/// Font size assumed when the terminal cannot tell (halfblocks do not need it to be exact).
const DEFAULT_FONT: (u16, u16) = (10, 20);
/// Encoded images kept before the cache is emptied.
const CACHE_LIMIT: usize = 96;

impl ImageProtocol {
    /// A picker for this choice. It never writes queries to the terminal or reads answers from
    /// stdin: a query that a terminal leaves unanswered (tmux without passthrough, a slow SSH
    /// link) would leave a reader thread behind that swallows keystrokes. The protocol comes
    /// from the environment, the cell size in pixels from the window-size ioctl.
    pub fn picker(self) -> Option<Picker> {
        let protocol = match self {
            ImageProtocol::Off => return None,
            ImageProtocol::Halfblocks => ProtocolType::Halfblocks,
            ImageProtocol::Kitty => ProtocolType::Kitty,
            ImageProtocol::Sixel => ProtocolType::Sixel,
            ImageProtocol::Iterm2 => ProtocolType::Iterm2,
            ImageProtocol::Auto => protocol_from_env(|k| std::env::var(k).ok()),
        };
        let mut p = Picker::from_fontsize(cell_pixels().unwrap_or(DEFAULT_FONT));
        p.set_protocol_type(protocol);
        Some(p)
    }
}

/// The graphics protocol the terminal named by the environment is known to support;
/// halfblocks when unsure and inside multiplexers (tmux, screen), which do not pass graphics
/// through by default.
pub fn protocol_from_env(var: impl Fn(&str) -> Option<String>) -> ProtocolType {
    let term = var("TERM").unwrap_or_default();
    let program = var("TERM_PROGRAM").unwrap_or_default();
    if var("TMUX").is_some() || term.starts_with("screen") || term.starts_with("tmux") {
        return ProtocolType::Halfblocks;
    }
    if var("KITTY_WINDOW_ID").is_some()
        || term == "xterm-kitty"
        || term == "xterm-ghostty"
        || program == "ghostty"
    {
        return ProtocolType::Kitty;
    }
    if program == "iTerm.app" || program == "WezTerm" || var("WEZTERM_EXECUTABLE").is_some() {
        return ProtocolType::Iterm2;
    }
    if term.starts_with("foot") || term.starts_with("mlterm") {
        return ProtocolType::Sixel;
    }
    ProtocolType::Halfblocks
}

/// Pixels per terminal cell, when the terminal reports its size in pixels.
fn cell_pixels() -> Option<(u16, u16)> {
    let size = crossterm::terminal::window_size().ok()?;
    if size.width == 0 || size.height == 0 || size.columns == 0 || size.rows == 0 {
        return None;
    }
    Some((size.width / size.columns, size.height / size.rows))
}

/// Name of a picker's protocol for the status line.
pub fn protocol_name(p: Option<&Picker>) -> &'static str {
    match p.map(|p| p.protocol_type()) {
        None => "off",
        Some(ProtocolType::Halfblocks) => "halfblocks",
        Some(ProtocolType::Sixel) => "sixel",
        Some(ProtocolType::Kitty) => "kitty",
        Some(ProtocolType::Iterm2) => "iterm2",
    }
}

/// One encoded image: a file drawn into a cell area of a given size.
type Key = (PathBuf, u16, u16);

struct Request {
    key: Key,
}

struct Done {
    key: Key,
    result: Result<Protocol, String>,
}

/// Encoded images by (file, width, height), filled in the background. Small images are scaled
/// up to the area (reconstructions are often 64 px), keeping their aspect ratio.
pub struct ImageCache {
    picker: Option<Picker>,
    ready: HashMap<Key, Result<Protocol, String>>,
    pending: HashSet<Key>,
    worker: Option<(Sender<Request>, Receiver<Done>)>,
}

impl std::fmt::Debug for ImageCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageCache")
            .field("ready", &self.ready.len())
            .field("pending", &self.pending.len())
            .finish()
    }
}

fn encode(picker: &Picker, key: &Key) -> Result<Protocol, String> {
    let img = image::open(&key.0).map_err(|e| format!("{}: {e}", key.0.display()))?;
    picker
        .new_protocol(img, Rect::new(0, 0, key.1, key.2), Resize::Scale(None))
        .map_err(|e| format!("{}: {e}", key.0.display()))
}

impl ImageCache {
    /// No images: every image shows as its file name.
    pub fn off() -> Self {
        Self { picker: None, ready: HashMap::new(), pending: HashSet::new(), worker: None }
    }

    /// Encode on a worker thread (the console).
    pub fn threaded(picker: Option<Picker>) -> Self {
        let mut cache = Self { picker: picker.clone(), ..Self::off() };
        if let Some(picker) = picker {
            let (req_tx, req_rx) = mpsc::channel::<Request>();
            let (done_tx, done_rx) = mpsc::channel::<Done>();
            std::thread::Builder::new()
                .name("image-encode".into())
                .spawn(move || {
                    while let Ok(Request { key }) = req_rx.recv() {
                        let result = encode(&picker, &key);
                        if done_tx.send(Done { key, result }).is_err() {
                            break;
                        }
                    }
                })
                .expect("spawning the image thread");
            cache.worker = Some((req_tx, done_rx));
        }
        cache
    }

    /// Encode synchronously while drawing (tests, benchmarks).
    pub fn blocking(picker: Option<Picker>) -> Self {
        Self { picker, ..Self::off() }
    }

    /// The picker in use (`None` = images off).
    pub fn picker(&self) -> Option<&Picker> {
        self.picker.as_ref()
    }

    /// Collect finished encodings; returns whether any arrived (the screen needs a redraw).
    pub fn collect(&mut self) -> bool {
        let Some((_, rx)) = &self.worker else { return false };
        let mut any = false;
        while let Ok(done) = rx.try_recv() {
            self.pending.remove(&done.key);
            self.ready.insert(done.key, done.result);
            any = true;
        }
        any
    }

    /// Whether encodings are still outstanding.
    pub fn busy(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Draw `path` fitted into `area`, or a placeholder while it is being encoded.
    pub fn render(&mut self, f: &mut Frame, area: Rect, path: &Path, dim: Style) {
        if area.width == 0 || area.height == 0 {
            return;
        }
        let Some(picker) = &self.picker else {
            let name =
                path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            f.render_widget(Paragraph::new(format!("[{name}]")).style(dim), area);
            return;
        };
        let key: Key = (path.to_path_buf(), area.width, area.height);
        if !self.ready.contains_key(&key) {
            if self.ready.len() >= CACHE_LIMIT {
                self.ready.clear();
            }
            match &self.worker {
                None => {
                    let r = encode(picker, &key);
                    self.ready.insert(key.clone(), r);
                }
                Some((tx, _)) => {
                    if self.pending.insert(key.clone()) {
                        let _ = tx.send(Request { key: key.clone() });
                    }
                }
            }
        }
        match self.ready.get(&key) {
            Some(Ok(proto)) => f.render_widget(Image::new(proto), area),
            Some(Err(e)) => f.render_widget(Paragraph::new(format!("✖ {e}")).style(dim), area),
            None => f.render_widget(Paragraph::new("loading…").style(dim), area),
        }
    }

    /// Drop every encoded image (the files changed, or the terminal was resized).
    pub fn clear(&mut self) {
        self.ready.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(vars: &[(&str, &str)]) -> ProtocolType {
        protocol_from_env(|k| vars.iter().find(|(name, _)| *name == k).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn auto_protocol_follows_the_environment() {
        assert_eq!(pick(&[("TERM", "xterm-256color")]), ProtocolType::Halfblocks);
        assert_eq!(pick(&[("TERM", "xterm-kitty")]), ProtocolType::Kitty);
        assert_eq!(
            pick(&[("TERM", "xterm-256color"), ("TERM_PROGRAM", "WezTerm")]),
            ProtocolType::Iterm2
        );
        assert_eq!(pick(&[("TERM", "foot")]), ProtocolType::Sixel);
        // Multiplexers get halfblocks even in a graphics-capable outer terminal.
        assert_eq!(
            pick(&[("TERM", "tmux-256color"), ("KITTY_WINDOW_ID", "1")]),
            ProtocolType::Halfblocks
        );
        assert_eq!(
            pick(&[("TERM", "xterm-kitty"), ("TMUX", "/tmp/tmux-0/default,1,0")]),
            ProtocolType::Halfblocks
        );
        assert_eq!(pick(&[]), ProtocolType::Halfblocks);
    }

    #[test]
    fn forced_protocols_are_kept() {
        for (choice, expected) in [
            (ImageProtocol::Kitty, ProtocolType::Kitty),
            (ImageProtocol::Sixel, ProtocolType::Sixel),
            (ImageProtocol::Iterm2, ProtocolType::Iterm2),
            (ImageProtocol::Halfblocks, ProtocolType::Halfblocks),
        ] {
            assert_eq!(choice.picker().map(|p| p.protocol_type()), Some(expected));
        }
        assert!(ImageProtocol::Off.picker().is_none());
    }
}
