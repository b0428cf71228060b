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
    /// Ask the terminal; halfblocks when it answers nothing useful.
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
    /// A picker for this choice. `Auto` and the graphics protocols query the terminal, so call
    /// this after entering the alternate screen and before reading input events.
    pub fn picker(self) -> Option<Picker> {
        let forced = match self {
            ImageProtocol::Off => return None,
            ImageProtocol::Halfblocks => {
                let mut p = Picker::from_fontsize(DEFAULT_FONT);
                p.set_protocol_type(ProtocolType::Halfblocks);
                return Some(p);
            }
            ImageProtocol::Auto => None,
            ImageProtocol::Kitty => Some(ProtocolType::Kitty),
            ImageProtocol::Sixel => Some(ProtocolType::Sixel),
            ImageProtocol::Iterm2 => Some(ProtocolType::Iterm2),
        };
        let mut p = Picker::from_query_stdio().unwrap_or_else(|_| Picker::from_fontsize(DEFAULT_FONT));
        if let Some(t) = forced {
            p.set_protocol_type(t);
        }
        Some(p)
    }
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
        f.debug_struct("ImageCache").field("ready", &self.ready.len()).field("pending", &self.pending.len()).finish()
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
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
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
