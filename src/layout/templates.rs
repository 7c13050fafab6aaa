//! Layouts as tera templates (`layouts/*.tera`).
//!
//! A template is rendered with the room state (see `layouts/README.md`
//! for the context variables) and a few helper functions that wrap this
//! module's geometry (`optimal_boxes`, `crop_rects`, `active_speaker`,
//! ...). It renders a JSON scene, which is parsed and validated here: every
//! region must name a participant of the room and, if any, one of that
//! participant's tracks, and its rectangle must be sane.
//!
//! The six built-in layouts are compiled in and produce exactly the scenes
//! of [`super::compose`] (tested below). A user adds or overrides a layout
//! with [`LayoutTemplates::add`]; reading the files is the caller's job,
//! so the layout module stays free of IO.
//!
//! A broken template never panics or takes the process down: syntax
//! errors are reported by `add` (file and line), rendering and output
//! errors by `compose` (file), and the previous templates keep working.
//! Tera has no recursion limit and a recursive parser with exponential
//! backtracking on nested calls, so `add` checks the source first: one
//! self-contained file (no `include`, `import`, `extends`, `macro`), blocks
//! nested at most 16 deep, calls/brackets at most 4 deep, at most 32
//! operators per tag, at most 256 KiB. `get_env`, `now` and `get_random`
//! are disabled, `range` is capped, the output is limited to 1 MiB and a
//! panic inside tera is caught. What is not bounded is CPU time: nested
//! loops that print nothing can run long, so untrusted layouts belong on a
//! blocking thread with a timeout.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::{self, Write};
use std::panic::{self, AssertUnwindSafe};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tera::{Context, Tera};

use super::active_speaker::{self, Host};
use super::geometry::RectF;
use super::label::{LabelStyle, label_for_tile, label_text};
use super::model::{Canvas, ParticipantView, RoomView, Shape, VideoView};
use super::name::Theme;
use super::scene::{Content, Fit, Label, Rect, Region, Rgba, Scene, Tile};
use super::speaker::{mux_page, resolve};
use super::{crop, gallery, livekit};

/// The built-in layouts: name, file (for messages) and source.
const BUILTINS: [(&str, &str, &str); 6] = [
    (
        "gallery",
        "layouts/gallery.tera",
        include_str!("../../layouts/gallery.tera"),
    ),
    (
        "active-speaker",
        "layouts/active-speaker.tera",
        include_str!("../../layouts/active-speaker.tera"),
    ),
    (
        "crop",
        "layouts/crop.tera",
        include_str!("../../layouts/crop.tera"),
    ),
    (
        "grid",
        "layouts/grid.tera",
        include_str!("../../layouts/grid.tera"),
    ),
    (
        "speaker",
        "layouts/speaker.tera",
        include_str!("../../layouts/speaker.tera"),
    ),
    (
        "single-speaker",
        "layouts/single-speaker.tera",
        include_str!("../../layouts/single-speaker.tera"),
    ),
];

/// Rendered output larger than this is an error (a runaway loop).
const MAX_OUTPUT_BYTES: usize = 1 << 20;
/// At most this many regions in a scene.
const MAX_REGIONS: usize = 256;
/// `range(...)` yields at most this many numbers.
const MAX_RANGE: usize = 10_000;
/// `optimal_boxes` places at most this many boxes.
const MAX_BOXES: usize = 1_000;
/// Rectangles may overflow the canvas, but no coordinate or size may
/// exceed this, or twice the canvas' larger side if that is more.
const MIN_EXTENT_LIMIT: f64 = 65_536.0;
/// Label text size bounds.
const MAX_FONT_PX: u32 = 1_000;
/// Source limits, see [`check_source`].
const MAX_SOURCE_BYTES: usize = 256 * 1024;
const MAX_BLOCK_DEPTH: usize = 16;
const MAX_BRACKET_DEPTH: usize = 4;
const MAX_OPERATORS: usize = 32;

/// The layout templates: a [`Tera`] with the helper functions registered,
/// and which file each layout came from.
#[derive(Debug, Clone)]
pub struct LayoutTemplates {
    tera: Tera,
    /// Layout name → file name for messages.
    files: BTreeMap<String, String>,
}

/// Why a layout template could not be added or rendered. Every variant
/// but `Unknown` names the template's file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateError {
    /// No layout of that name; `valid` lists the layout names (each also
    /// accepted with a `-light` or `-dark` suffix).
    Unknown { name: String, valid: Vec<String> },
    /// The file is not a usable template: bad file name, syntax error
    /// (with the line), or an unsupported tag.
    Parse {
        file: String,
        line: Option<usize>,
        message: String,
    },
    /// Rendering failed: an unknown variable, a helper called wrongly, ...
    Render { file: String, message: String },
    /// The rendered text is not a valid scene: bad JSON, a participant or
    /// track that is not in the room, an absurd rectangle, ...
    Output { file: String, message: String },
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown { name, valid } => write!(
                f,
                "unknown layout `{name}`; valid layouts: {} (each also with -light or -dark)",
                valid.join(", ")
            ),
            Self::Parse {
                file,
                line: Some(line),
                message,
            } => write!(f, "{file}, line {line}: {message}"),
            Self::Parse {
                file,
                line: None,
                message,
            } => write!(f, "{file}: {message}"),
            Self::Render { file, message } => write!(f, "{file}: cannot render: {message}"),
            Self::Output { file, message } => write!(f, "{file}: invalid output: {message}"),
        }
    }
}

impl std::error::Error for TemplateError {}

impl LayoutTemplates {
    /// The built-in layouts (`gallery`, `active-speaker`, `crop`, `grid`,
    /// `speaker`, `single-speaker`), compiled in.
    pub fn builtin() -> LayoutTemplates {
        let mut tera = Tera::default();
        tera.autoescape_on(Vec::new());
        register_helpers(&mut tera);
        let mut templates = LayoutTemplates {
            tera,
            files: BTreeMap::new(),
        };
        for (name, file, source) in BUILTINS {
            // The built-ins are tested; a failure here is a build defect.
            if let Err(e) = templates.insert(name, file, source) {
                panic!("built-in layout template is broken: {e}");
            }
        }
        templates
    }

    /// Adds a user's layout from `file_name` (`<name>.tera`, optionally
    /// with a directory, which is ignored for the name); it replaces a
    /// layout of the same name, built-in or not. On error nothing changes.
    pub fn add(&mut self, file_name: &str, source: &str) -> Result<(), TemplateError> {
        let name = layout_name(file_name).map_err(|message| TemplateError::Parse {
            file: file_name.to_owned(),
            line: None,
            message,
        })?;
        self.insert(&name, file_name, source)
    }

    /// Whether `name` is a layout here (a template, or one with a
    /// `-light`/`-dark` theme suffix); the error lists the valid names.
    pub fn check_name(&self, name: &str) -> Result<(), TemplateError> {
        self.resolve(name).map(|_| ())
    }

    /// The layout names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.files.keys().cloned().collect()
    }

    /// Renders layout `name` for the room and parses the scene. A name
    /// that is not a layout but ends in `-light`/`-dark` renders the base
    /// layout with `theme` set accordingly (`grid-light` → `grid.tera`
    /// with `theme = "light"`).
    pub fn compose(
        &self,
        name: &str,
        canvas: Canvas,
        room: &RoomView,
        speaker: Option<&str>,
    ) -> Result<Scene, TemplateError> {
        let (base, theme) = self.resolve(name)?;
        let file = self.files.get(base).map_or(base, String::as_str);
        let context = render_context(name, theme, canvas, room, speaker);
        let text = self
            .render(base, &context)
            .map_err(|message| TemplateError::Render {
                file: file.to_owned(),
                message,
            })?;
        let output = parse_output(&text).map_err(|message| TemplateError::Output {
            file: file.to_owned(),
            message,
        })?;
        scene_from_output(output, canvas, room).map_err(|message| TemplateError::Output {
            file: file.to_owned(),
            message,
        })
    }

    fn insert(&mut self, name: &str, file: &str, source: &str) -> Result<(), TemplateError> {
        let parse_error = |line, message| TemplateError::Parse {
            file: file.to_owned(),
            line,
            message,
        };
        check_source(source).map_err(|(line, message)| parse_error(line, message))?;
        // Tera keeps a template that parsed but failed a later check;
        // adding to a copy leaves `self` untouched on error.
        let mut tera = self.tera.clone();
        let key = template_key(name);
        match panic::catch_unwind(AssertUnwindSafe(|| tera.add_raw_template(&key, source))) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let (line, message) = describe_parse_error(&e, source);
                return Err(parse_error(line, message));
            }
            Err(_) => return Err(parse_error(None, "the template parser panicked".into())),
        }
        self.tera = tera;
        self.files.insert(name.to_owned(), file.to_owned());
        Ok(())
    }

    fn resolve<'n>(&self, name: &'n str) -> Result<(&'n str, Theme), TemplateError> {
        let theme = if name.ends_with("-light") {
            Theme::Light
        } else {
            Theme::Dark
        };
        let base = if self.files.contains_key(name) {
            Some(name)
        } else {
            ["-light", "-dark"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .filter(|base| self.files.contains_key(*base))
        };
        base.map(|base| (base, theme))
            .ok_or_else(|| TemplateError::Unknown {
                name: name.to_owned(),
                valid: self.names(),
            })
    }

    fn render(&self, name: &str, context: &Context) -> Result<String, String> {
        let mut out = CappedBuffer::default();
        let key = template_key(name);
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            self.tera.render_to(&key, context, &mut out)
        }));
        match result {
            Ok(Ok(())) => String::from_utf8(out.buf).map_err(|_| "the output is not UTF-8".into()),
            Ok(Err(_)) if out.overflowed => Err(format!(
                "the output is larger than {} KiB",
                MAX_OUTPUT_BYTES / 1024
            )),
            Ok(Err(e)) => Err(error_chain(&e)),
            Err(_) => Err("the template engine panicked".into()),
        }
    }
}

/// The tera name of a layout's template.
fn template_key(name: &str) -> String {
    format!("{name}.tera")
}

/// `dir/picture-in-picture.tera` → `picture-in-picture`.
fn layout_name(file_name: &str) -> Result<String, String> {
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    let Some(stem) = base.strip_suffix(".tera") else {
        return Err("a layout file's name must end in `.tera`".into());
    };
    if stem.is_empty()
        || !stem
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "layout name `{stem}` must be letters, digits, `-` and `_`"
        ));
    }
    Ok(stem.to_owned())
}

/// Checks the source before tera parses it (line, message): one
/// self-contained file (no `include`, `import`, `extends` or `macro`:
/// tera has no recursion limit) within limits that keep tera's recursive
/// parser and renderer well inside a 2 MiB thread stack and its parser
/// out of exponential backtracking (calls nested 8 deep take seconds to
/// parse). A conservative scan of the tags; comments and raw blocks are
/// skipped.
fn check_source(source: &str) -> Result<(), (Option<usize>, String)> {
    if source.len() > MAX_SOURCE_BYTES {
        return Err((
            None,
            format!("the file is larger than {} KiB", MAX_SOURCE_BYTES / 1024),
        ));
    }
    let bytes = source.as_bytes();
    let error = |offset: usize, message: String| {
        Err((Some(source[..offset].matches('\n').count() + 1), message))
    };
    let mut blocks = 0usize;
    let mut pos = 0;
    while let Some((start, kind)) = find_tag_open(bytes, pos) {
        if kind == b'#' {
            pos = find_bytes(bytes, b"#}", start + 2).map_or(bytes.len(), |end| end + 2);
            continue;
        }
        let close: &[u8] = if kind == b'%' { b"%}" } else { b"}}" };
        let tag = scan_tag(bytes, start + 2, close);
        pos = tag.end;
        if kind == b'%' {
            match tag.first_word.as_str() {
                word @ ("include" | "import" | "extends" | "macro") => {
                    return error(
                        start,
                        format!(
                            "`{{% {word} %}}` is not supported: a layout is one \
                             self-contained file (no include, import, extends or macro)"
                        ),
                    );
                }
                "if" | "for" | "filter" | "block" => {
                    blocks += 1;
                    if blocks > MAX_BLOCK_DEPTH {
                        return error(
                            start,
                            format!("blocks are nested more than {MAX_BLOCK_DEPTH} deep"),
                        );
                    }
                }
                "endif" | "endfor" | "endfilter" | "endblock" => {
                    blocks = blocks.saturating_sub(1);
                }
                "raw" => {
                    pos = find_bytes(bytes, b"endraw", pos)
                        .and_then(|end| find_bytes(bytes, b"%}", end))
                        .map_or(bytes.len(), |end| end + 2);
                }
                _ => {}
            }
        }
        if tag.max_brackets > MAX_BRACKET_DEPTH {
            return error(
                start,
                format!(
                    "calls and brackets are nested more than {MAX_BRACKET_DEPTH} deep; \
                     use {{% set %}} for intermediate values"
                ),
            );
        }
        if tag.operators > MAX_OPERATORS {
            return error(
                start,
                format!(
                    "more than {MAX_OPERATORS} operators in one tag; \
                     use {{% set %}} for intermediate values"
                ),
            );
        }
    }
    Ok(())
}

/// The next `{{`, `{%` or `{#` at or after `from`: offset and its second
/// byte.
fn find_tag_open(bytes: &[u8], from: usize) -> Option<(usize, u8)> {
    (from..bytes.len().saturating_sub(1)).find_map(|i| {
        (bytes[i] == b'{' && matches!(bytes[i + 1], b'{' | b'%' | b'#')).then(|| (i, bytes[i + 1]))
    })
}

fn find_bytes(bytes: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// What [`check_source`] measures in one tag.
#[derive(Debug, Default)]
struct TagScan {
    /// Offset just past the closing `}}`/`%}` (or the end of the source).
    end: usize,
    first_word: String,
    max_brackets: usize,
    operators: usize,
}

/// Scans a tag body from `from` to `close` (outside string literals).
fn scan_tag(bytes: &[u8], from: usize, close: &[u8]) -> TagScan {
    let mut scan = TagScan {
        end: bytes.len(),
        ..TagScan::default()
    };
    let mut i = from + usize::from(bytes.get(from) == Some(&b'-'));
    let (mut brackets, mut seen_word) = (0usize, false);
    while i < bytes.len() {
        let rest = &bytes[i..];
        if rest.starts_with(close) {
            scan.end = i + close.len();
            break;
        }
        if rest[0] == b'-' && rest[1..].starts_with(close) {
            scan.end = i + 1 + close.len();
            break;
        }
        match rest[0] {
            quote @ (b'"' | b'\'' | b'`') => {
                seen_word = true;
                i = rest[1..]
                    .iter()
                    .position(|&b| b == quote)
                    .map_or(bytes.len(), |p| i + p + 2);
                continue;
            }
            b'(' | b'[' => {
                brackets += 1;
                scan.max_brackets = scan.max_brackets.max(brackets);
            }
            b')' | b']' => brackets = brackets.saturating_sub(1),
            b'=' | b'!' | b'<' | b'>' => {
                let comparison = rest.get(1) == Some(&b'=');
                if comparison || rest[0] != b'=' {
                    scan.operators += 1;
                }
                i += usize::from(comparison);
            }
            b'+' | b'-' | b'*' | b'/' | b'%' | b'~' | b'|' => scan.operators += 1,
            b if b.is_ascii_alphanumeric() || b == b'_' => {
                let len = rest
                    .iter()
                    .position(|&b| !(b.is_ascii_alphanumeric() || b == b'_' || b == b'.'))
                    .unwrap_or(rest.len());
                let word = &rest[..len];
                if !seen_word {
                    scan.first_word = String::from_utf8_lossy(word).into_owned();
                    seen_word = true;
                }
                if matches!(word, b"and" | b"or" | b"not" | b"in" | b"is") {
                    scan.operators += 1;
                }
                i += len;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    scan
}

/// All messages of a tera error and its sources, without tera's generic
/// "Failed to render/parse 'x'" head (the caller names the file).
fn error_chain(e: &tera::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    if parts.len() > 1
        && (parts[0].starts_with("Failed to render") || parts[0].starts_with("Failed to parse"))
    {
        parts.remove(0);
    }
    parts.join(": ")
}

/// Line and message of a tera parse error. Syntax errors come from pest
/// as ` --> 4:10 | ... = expected ...`; they become
/// `column 10: expected ...: `the line``.
fn describe_parse_error(e: &tera::Error, source: &str) -> (Option<usize>, String) {
    let text = error_chain(e);
    let position = text.lines().find_map(|l| {
        let (line, column) = l.trim().strip_prefix("--> ")?.split_once(':')?;
        Some((
            line.trim().parse::<usize>().ok()?,
            column.trim().parse::<usize>().ok()?,
        ))
    });
    let Some((line, column)) = position else {
        return (None, text);
    };
    let reason = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("= "))
        .unwrap_or("syntax error");
    let code = line
        .checked_sub(1)
        .and_then(|i| source.lines().nth(i))
        .map(|l| excerpt(l.trim()))
        .unwrap_or_default();
    (Some(line), format!("column {column}: {reason}: `{code}`"))
}

fn excerpt(text: &str) -> String {
    const MAX_CHARS: usize = 120;
    if text.chars().count() > MAX_CHARS {
        let cut: String = text.chars().take(MAX_CHARS).collect();
        format!("{cut}…")
    } else {
        text.to_owned()
    }
}

/// A writer that refuses to grow beyond [`MAX_OUTPUT_BYTES`].
#[derive(Default)]
struct CappedBuffer {
    buf: Vec<u8>,
    overflowed: bool,
}

impl Write for CappedBuffer {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > MAX_OUTPUT_BYTES {
            self.overflowed = true;
            return Err(io::Error::other("layout output too large"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Context

#[derive(Serialize)]
struct CanvasContext {
    width: u32,
    height: u32,
    shape: Shape,
}

/// The variables a template sees (documented in `layouts/README.md`).
fn render_context(
    name: &str,
    theme: Theme,
    canvas: Canvas,
    room: &RoomView,
    speaker: Option<&str>,
) -> Context {
    let mut context = Context::new();
    context.insert("layout", name);
    context.insert("theme", &theme);
    context.insert(
        "canvas",
        &CanvasContext {
            width: canvas.width,
            height: canvas.height,
            shape: canvas.shape(),
        },
    );
    context.insert("room", room);
    context.insert("participants", &room.participants);
    context.insert("speaker", &resolve(room, speaker));
    context.insert("sharer", &room.screen_sharer());
    context.insert("page", &mux_page(room, speaker));
    context
}

// ---------------------------------------------------------------------------
// Helper functions

fn register_helpers(tera: &mut Tera) {
    tera.register_function("rect", helper_rect);
    tera.register_function("optimal_boxes", helper_optimal_boxes);
    tera.register_function("crop_rects", helper_crop_rects);
    tera.register_function("gallery_share", helper_gallery_share);
    tera.register_function("active_speaker", helper_active_speaker);
    tera.register_function("livekit_grid", helper_livekit_grid);
    tera.register_function("livekit_speaker", helper_livekit_speaker);
    tera.register_function("label", helper_label);
    tera.register_function("label_text", helper_label_text);
    tera.register_function("range", helper_range);
    for name in ["get_env", "now", "get_random"] {
        tera.register_function(name, move |_: &HashMap<String, Value>| {
            Err(tera::Error::msg(format!(
                "`{name}` is not available in layouts"
            )))
        });
    }
}

/// A helper's named arguments, with messages naming helper and argument.
struct Args<'a> {
    helper: &'static str,
    args: &'a HashMap<String, Value>,
}

impl<'a> Args<'a> {
    fn new(
        helper: &'static str,
        args: &'a HashMap<String, Value>,
        known: &[&str],
    ) -> tera::Result<Self> {
        let mut unknown: Vec<&str> = args
            .keys()
            .map(String::as_str)
            .filter(|k| !known.contains(k))
            .collect();
        unknown.sort_unstable();
        if let Some(first) = unknown.first() {
            return Err(tera::Error::msg(format!(
                "{helper}: unknown argument `{first}`; it takes {}",
                known.join(", ")
            )));
        }
        Ok(Self { helper, args })
    }

    fn error(&self, key: &str, message: impl fmt::Display) -> tera::Error {
        tera::Error::msg(format!("{}: argument `{key}`: {message}", self.helper))
    }

    fn get<T: DeserializeOwned>(&self, key: &str) -> tera::Result<T> {
        self.opt(key)?
            .ok_or_else(|| self.error(key, "missing (or null)"))
    }

    fn opt<T: DeserializeOwned>(&self, key: &str) -> tera::Result<Option<T>> {
        match self.args.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => T::deserialize(value)
                .map(Some)
                .map_err(|e| self.error(key, e)),
        }
    }

    /// A non-negative number.
    fn length(&self, key: &str) -> tera::Result<f64> {
        let v: f64 = self.get(key)?;
        if v >= 0.0 {
            Ok(v)
        } else {
            Err(self.error(key, format!("{v} is negative")))
        }
    }

    /// `speaker`: a participant object, a sid, or null.
    fn speaker(&self) -> tera::Result<Option<String>> {
        match self.args.get("speaker") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(sid)) => Ok(Some(sid.clone())),
            Some(Value::Object(p)) => match p.get("sid") {
                Some(Value::String(sid)) => Ok(Some(sid.clone())),
                _ => Err(self.error("speaker", "a participant object needs a `sid`")),
            },
            Some(other) => Err(self.error(
                "speaker",
                format!("expected a participant, a sid or null, got {other}"),
            )),
        }
    }
}

fn to_value(value: impl Serialize) -> tera::Result<Value> {
    serde_json::to_value(value).map_err(|e| tera::Error::msg(e.to_string()))
}

/// A rectangle argument or output: any numbers, rounded by the layout
/// module's rule (each edge half-up).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
struct RectArg {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

impl RectArg {
    fn to_pixels(self, limit: f64) -> Result<Rect, String> {
        let Self { x, y, w, h } = self;
        if w < 0.0 || h < 0.0 {
            return Err(format!("rect has a negative size {w}×{h}"));
        }
        if [x, y, w, h]
            .iter()
            .any(|v| !v.is_finite() || v.abs() > limit)
        {
            return Err(format!(
                "rect ({x}, {y}, {w}×{h}) is out of bounds (±{limit} px)"
            ));
        }
        Ok(RectF::new(x, y, w, h).to_pixels())
    }
}

/// One placed track, as the tile helpers return it.
#[derive(Serialize)]
struct TileValue<'a> {
    participant: &'a ParticipantView,
    content: Content,
    video: Option<&'a VideoView>,
    rect: Rect,
}

fn tiles_value(tiles: &[Tile<'_>]) -> tera::Result<Value> {
    let tiles: Vec<TileValue<'_>> = tiles
        .iter()
        .map(|t| TileValue {
            participant: t.participant,
            content: t.content,
            video: match t.content {
                Content::Camera => t.participant.camera.as_ref(),
                Content::ScreenShare => t.participant.screen_share.as_ref(),
            },
            rect: t.rect.to_pixels(),
        })
        .collect();
    to_value(tiles)
}

fn rects_value(rects: &[RectF]) -> tera::Result<Value> {
    to_value(rects.iter().map(|r| r.to_pixels()).collect::<Vec<_>>())
}

/// `rect(x, y, w, h)`: a rectangle, rounded by the layout module's rule.
fn helper_rect(args: &HashMap<String, Value>) -> tera::Result<Value> {
    let a = Args::new("rect", args, &["x", "y", "w", "h"])?;
    let rect = RectArg {
        x: a.get("x")?,
        y: a.get("y")?,
        w: a.get("w")?,
        h: a.get("h")?,
    };
    to_value(rect.to_pixels(f64::MAX).map_err(tera::Error::msg)?)
}

/// `optimal_boxes(count, width, height, gap, padding, aspect, x=0, y=0)`:
/// Mux gallery's equal boxes.
fn helper_optimal_boxes(args: &HashMap<String, Value>) -> tera::Result<Value> {
    let a = Args::new(
        "optimal_boxes",
        args,
        &[
            "count", "width", "height", "gap", "padding", "aspect", "x", "y",
        ],
    )?;
    let count: usize = a.get("count")?;
    if count > MAX_BOXES {
        return Err(a.error("count", format!("at most {MAX_BOXES}")));
    }
    let (width, height) = (a.length("width")?, a.length("height")?);
    let (gap, padding) = (a.length("gap")?, a.length("padding")?);
    let aspect: f64 = a.get("aspect")?;
    if aspect <= 0.0 {
        return Err(a.error("aspect", "must be > 0"));
    }
    let x = a.opt::<f64>("x")?.unwrap_or(0.0);
    let y = a.opt::<f64>("y")?.unwrap_or(0.0);
    let frame = RectF::new(
        x + padding,
        y + padding,
        (width - 2.0 * padding).max(0.0),
        (height - 2.0 * padding).max(0.0),
    );
    rects_value(&gallery::optimal_boxes(frame, count, aspect, gap))
}

/// `crop_rects(canvas, count)`: Mux crop's table for the canvas shape.
fn helper_crop_rects(args: &HashMap<String, Value>) -> tera::Result<Value> {
    let a = Args::new("crop_rects", args, &["canvas", "count"])?;
    rects_value(&crop::rects(a.get("canvas")?, a.get("count")?))
}

/// `gallery_share(canvas, sharer, page)`: the share plus Mux's people
/// column.
fn helper_gallery_share(args: &HashMap<String, Value>) -> tera::Result<Value> {
    let a = Args::new("gallery_share", args, &["canvas", "sharer", "page"])?;
    let sharer: ParticipantView = a.get("sharer")?;
    let page: Vec<ParticipantView> = a.get("page")?;
    let page: Vec<&ParticipantView> = page.iter().collect();
    tiles_value(&gallery::share_column(a.get("canvas")?, &sharer, &page))
}

/// `active_speaker(canvas, room, speaker, host)`: Mux's active-speaker
/// view.
fn helper_active_speaker(args: &HashMap<String, Value>) -> tera::Result<Value> {
    let a = Args::new(
        "active_speaker",
        args,
        &["canvas", "room", "speaker", "host"],
    )?;
    let host = match a.opt::<String>("host")?.as_deref() {
        None | Some("active-speaker") => Host::ActiveSpeaker,
        Some("gallery") => Host::Gallery,
        Some("crop") => Host::Crop,
        Some(other) => {
            return Err(a.error(
                "host",
                format!("`{other}` is not active-speaker, gallery or crop"),
            ));
        }
    };
    let room: RoomView = a.get("room")?;
    let speaker = a.speaker()?;
    tiles_value(&active_speaker::compose(
        a.get("canvas")?,
        &room,
        speaker.as_deref(),
        host,
    ))
}

/// `livekit_grid(canvas, room, speaker=null)`: LiveKit's grid.
fn helper_livekit_grid(args: &HashMap<String, Value>) -> tera::Result<Value> {
    let a = Args::new("livekit_grid", args, &["canvas", "room", "speaker"])?;
    let room: RoomView = a.get("room")?;
    let speaker = a.speaker()?;
    tiles_value(&livekit::grid(a.get("canvas")?, &room, speaker.as_deref()))
}

/// `livekit_speaker(canvas, room, speaker)`: LiveKit's carousel then the
/// focus.
fn helper_livekit_speaker(args: &HashMap<String, Value>) -> tera::Result<Value> {
    let a = Args::new("livekit_speaker", args, &["canvas", "room", "speaker"])?;
    let room: RoomView = a.get("room")?;
    let speaker = a.speaker()?;
    tiles_value(&livekit::speaker(
        a.get("canvas")?,
        &room,
        speaker.as_deref(),
    ))
}

/// `label(name, content, large, rect)`: the name label of a tile, or null.
fn helper_label(args: &HashMap<String, Value>) -> tera::Result<Value> {
    let a = Args::new("label", args, &["name", "content", "large", "rect"])?;
    let name: String = a.get("name")?;
    let content: Content = a.get("content")?;
    let style = if a.opt::<bool>("large")?.unwrap_or(false) {
        LabelStyle::Large
    } else {
        LabelStyle::Normal
    };
    let rect = a
        .get::<RectArg>("rect")?
        .to_pixels(f64::MAX)
        .map_err(|e| a.error("rect", e))?;
    to_value(label_text(&name, content).and_then(|text| label_for_tile(rect, text, style)))
}

/// `label_text(name, content)`: the label's text, or null.
fn helper_label_text(args: &HashMap<String, Value>) -> tera::Result<Value> {
    let a = Args::new("label_text", args, &["name", "content"])?;
    let name: String = a.get("name")?;
    to_value(label_text(&name, a.get("content")?))
}

/// tera's `range(end, start=0, step_by=1)`, capped at [`MAX_RANGE`] items.
fn helper_range(args: &HashMap<String, Value>) -> tera::Result<Value> {
    let a = Args::new("range", args, &["start", "end", "step_by"])?;
    let start = a.opt::<usize>("start")?.unwrap_or(0);
    let end: usize = a.get("end")?;
    let step = a.opt::<usize>("step_by")?.unwrap_or(1);
    if step == 0 {
        return Err(a.error("step_by", "must be at least 1"));
    }
    if start > end {
        return Err(a.error("start", "is greater than `end`"));
    }
    if (end - start).div_ceil(step) > MAX_RANGE {
        return Err(a.error("end", format!("at most {MAX_RANGE} numbers")));
    }
    to_value((start..end).step_by(step).collect::<Vec<_>>())
}

// ---------------------------------------------------------------------------
// Output

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Output {
    background: Option<String>,
    regions: Vec<OutputRegion>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutputRegion {
    participant_sid: String,
    track_sid: Option<String>,
    content: Content,
    rect: RectArg,
    z: Option<u32>,
    fit: Option<Fit>,
    rounded: Option<u32>,
    label: Option<OutputLabel>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutputLabel {
    text: String,
    #[serde(default)]
    large: bool,
    rect: RectArg,
    font_px: Option<u32>,
}

fn parse_output(text: &str) -> Result<Output, String> {
    serde_json::from_str(text).map_err(|e| {
        let line = e
            .line()
            .checked_sub(1)
            .and_then(|i| text.lines().nth(i))
            .map(|l| format!(": `{}`", excerpt(l.trim())))
            .unwrap_or_default();
        format!("{e} of the rendered JSON{line}")
    })
}

/// `#rrggbb` or `#rrggbbaa`.
fn parse_color(text: &str) -> Option<Rgba> {
    let hex = text.strip_prefix('#')?;
    if !(hex.len() == 6 || hex.len() == 8) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
    Some(Rgba {
        r: byte(0)?,
        g: byte(2)?,
        b: byte(4)?,
        a: if hex.len() == 8 { byte(6)? } else { 255 },
    })
}

/// Validates the output against the room and builds the scene: regions
/// in ascending `z` (ties keep their order), renumbered `0..n`.
fn scene_from_output(output: Output, canvas: Canvas, room: &RoomView) -> Result<Scene, String> {
    let background = match output.background.as_deref() {
        None => Rgba::BLACK,
        Some(text) => parse_color(text)
            .ok_or_else(|| format!("background `{text}` is not #rrggbb or #rrggbbaa"))?,
    };
    if output.regions.len() > MAX_REGIONS {
        return Err(format!(
            "{} regions; at most {MAX_REGIONS}",
            output.regions.len()
        ));
    }
    let limit = MIN_EXTENT_LIMIT.max(2.0 * f64::from(canvas.width.max(canvas.height)));
    let mut regions = output
        .regions
        .into_iter()
        .enumerate()
        .map(|(i, region)| {
            let sid = region.participant_sid.clone();
            let z = region.z.unwrap_or(i as u32);
            to_region(region, room, limit)
                .map(|region| (z, region))
                .map_err(|e| format!("region {i} (participant `{sid}`): {e}"))
        })
        .collect::<Result<Vec<(u32, Region)>, String>>()?;
    regions.sort_by_key(|(z, _)| *z);
    let regions = (0u32..)
        .zip(regions)
        .map(|(z, (_, region))| Region { z, ..region })
        .collect();
    Ok(Scene {
        canvas,
        background,
        regions,
    })
}

fn to_region(region: OutputRegion, room: &RoomView, limit: f64) -> Result<Region, String> {
    let participant = room
        .participant(&region.participant_sid)
        .ok_or("not in the room")?;
    if let Some(track) = &region.track_sid {
        let (video, what) = match region.content {
            Content::Camera => (participant.camera.as_ref(), "camera"),
            Content::ScreenShare => (participant.screen_share.as_ref(), "screen share"),
        };
        if video.map(|v| &v.track_sid) != Some(track) {
            return Err(format!("track `{track}` is not this participant's {what}"));
        }
    }
    let rect = region.rect.to_pixels(limit)?;
    let rounded = region.rounded.unwrap_or(0);
    if f64::from(rounded) > limit {
        return Err(format!("rounded {rounded} is out of bounds"));
    }
    let label = region
        .label
        .map(|label| {
            let font_px = label.font_px.unwrap_or(if label.large { 28 } else { 24 });
            if !(1..=MAX_FONT_PX).contains(&font_px) {
                return Err(format!("label font_px {font_px} is not 1..={MAX_FONT_PX}"));
            }
            Ok(Label {
                text: label.text,
                large: label.large,
                rect: label
                    .rect
                    .to_pixels(limit)
                    .map_err(|e| format!("label {e}"))?,
                font_px,
            })
        })
        .transpose()?;
    Ok(Region {
        participant_sid: region.participant_sid,
        track_sid: region.track_sid,
        content: region.content,
        rect,
        z: 0,
        fit: region.fit.unwrap_or(Fit::Cover),
        rounded,
        label,
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{LayoutName, compose as compose_scene};
    use super::*;

    const CANVASES: [(u32, u32); 6] = [
        (1920, 1080),
        (1080, 1080),
        (1080, 1920),
        (1280, 720),
        (720, 1280),
        (600, 1200),
    ];
    const SPEAKERS: [Option<&str>; 6] = [
        None,
        Some("P1"),
        Some("P2"),
        Some("P4"),
        Some("P11"),
        Some("nobody"),
    ];
    const PIP: &str = include_str!("../../layouts/examples/picture-in-picture.tera");

    /// Mixed states: unknown-size, missing, muted, portrait and square
    /// cameras, empty and multi-line names, speakers beyond the page.
    fn messy_room(n: usize, share: bool) -> RoomView {
        let mut room = room_of(n);
        for p in &mut room.participants {
            match p.sid.as_str() {
                "P1" => p.camera = Some(video("P1-cam", 0, 0)),
                "P2" => p.camera = None,
                "P3" => {
                    if let Some(c) = p.camera.as_mut() {
                        c.muted = true;
                    }
                    if share {
                        let mut screen = video("P3-screen", 1080, 1920);
                        screen.muted = true;
                        p.screen_share = Some(screen);
                    }
                }
                "P4" => p.camera = Some(video("P4-cam", 720, 1280)),
                "P5" => p.name = String::new(),
                "P6" => p.name = "James\nBond".into(),
                "P7" => p.camera = Some(video("P7-cam", 1080, 1080)),
                _ => {}
            }
        }
        room.active_speakers = ["P11", "P4", "P12"]
            .iter()
            .filter(|sid| room.participant(sid).is_some())
            .map(|sid| (*sid).to_owned())
            .collect();
        room
    }

    fn rooms() -> Vec<(String, RoomView)> {
        let mut rooms = Vec::new();
        for n in 0..=12 {
            rooms.push((format!("room_of({n})"), room_of(n)));
        }
        for n in 1..=12 {
            rooms.push((format!("sharing_room({n})"), sharing_room(n)));
        }
        for n in [1, 2, 3, 5, 8, 11, 12] {
            for share in [false, true] {
                rooms.push((format!("messy_room({n}, {share})"), messy_room(n, share)));
            }
        }
        for (w, h, muted) in [(720, 1280, false), (720, 1280, true), (1080, 1080, false)] {
            let mut lone = room_of(1);
            let mut camera = video("P1-cam", w, h);
            camera.muted = muted;
            lone.participants[0].camera = Some(camera);
            rooms.push((format!("lone {w}×{h} camera, muted {muted}"), lone));
        }
        let mut two_sharers = sharing_room(4);
        two_sharers.participants[1].screen_share = Some(video("P2-screen", 1280, 1024));
        rooms.push(("two sharers".into(), two_sharers));
        let mut bare_share = sharing_room(1);
        bare_share.participants[0].camera = None;
        rooms.push(("a share without camera".into(), bare_share));
        rooms
    }

    /// The template renders exactly `compose`'s scene for every input.
    fn assert_matches_compose(base: &str) {
        let templates = LayoutTemplates::builtin();
        let names: Vec<&str> = LayoutName::all()
            .iter()
            .copied()
            .filter(|n| {
                *n == base || n.strip_suffix("-light").or(n.strip_suffix("-dark")) == Some(base)
            })
            .collect();
        assert!(!names.is_empty(), "{base}");
        let rooms = rooms();
        let mut checked = 0;
        for name in names {
            let layout: LayoutName = name.parse().expect("a built-in name");
            for (w, h) in CANVASES {
                let canvas = Canvas::new(w, h);
                for (label, room) in &rooms {
                    for speaker in SPEAKERS {
                        let expected = compose_scene(layout, canvas, room, speaker);
                        let actual = templates.compose(name, canvas, room, speaker);
                        assert_eq!(
                            actual,
                            Ok(expected),
                            "{name} {w}×{h} {label} speaker {speaker:?}"
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked >= 1000, "{base}: {checked}");
    }

    #[test]
    fn gallery_template_matches_compose() {
        assert_matches_compose("gallery");
    }

    #[test]
    fn active_speaker_template_matches_compose() {
        assert_matches_compose("active-speaker");
    }

    #[test]
    fn crop_template_matches_compose() {
        assert_matches_compose("crop");
    }

    #[test]
    fn grid_template_matches_compose() {
        assert_matches_compose("grid");
    }

    #[test]
    fn speaker_template_matches_compose() {
        assert_matches_compose("speaker");
    }

    #[test]
    fn single_speaker_template_matches_compose() {
        assert_matches_compose("single-speaker");
    }

    #[test]
    fn builtin_names_and_every_layout_name_resolve() {
        let templates = LayoutTemplates::builtin();
        assert_eq!(
            templates.names(),
            [
                "active-speaker",
                "crop",
                "gallery",
                "grid",
                "single-speaker",
                "speaker"
            ]
        );
        for name in LayoutName::all() {
            assert!(
                templates
                    .compose(name, Canvas::new(1920, 1080), &room_of(2), None)
                    .is_ok(),
                "{name}"
            );
        }
    }

    fn rects(scene: &Scene) -> Vec<(i32, i32, u32, u32)> {
        scene.regions.iter().map(|r| xywh(&r.rect)).collect()
    }

    #[test]
    fn a_user_layout_added_at_runtime_works() {
        let mut templates = LayoutTemplates::builtin();
        templates
            .add("layouts/examples/picture-in-picture.tera", PIP)
            .expect("the example parses");
        assert!(templates.names().contains(&"picture-in-picture".to_owned()));
        let canvas = Canvas::new(1920, 1080);
        // The speaker fills the canvas, the next person sits bottom-right:
        // 480×270, 40 px from the edges.
        let scene = templates
            .compose("picture-in-picture", canvas, &room_of(3), Some("P2"))
            .expect("renders");
        assert_eq!(scene.background, Rgba::rgb(0x10, 0x18, 0x20));
        assert_eq!(rects(&scene), [(0, 0, 1920, 1080), (1400, 770, 480, 270)]);
        let (main, small) = (&scene.regions[0], &scene.regions[1]);
        assert_eq!(
            (main.participant_sid.as_str(), main.track_sid.as_deref()),
            ("P2", Some("P2-cam"))
        );
        assert_eq!(
            (small.participant_sid.as_str(), small.rounded, small.z),
            ("P1", 12, 1)
        );
        assert_eq!(
            main.label.as_ref().map(|l| (l.text.as_str(), l.large)),
            Some(("Person 2", true))
        );
        // Sharing: the share fills (contain), the speaker goes small.
        let scene = templates
            .compose("picture-in-picture", canvas, &sharing_room(3), Some("P3"))
            .expect("renders");
        let r = &scene.regions;
        assert_eq!(
            (r[0].content, r[0].fit, r[0].track_sid.as_deref()),
            (Content::ScreenShare, Fit::Contain, Some("P1-screen"))
        );
        assert_eq!(r[1].participant_sid, "P3");
        // Fractional sizes are rounded by the layout rule: 1366 / 4 =
        // 341.5 wide from x = 984.5 → edges 985 and 1326.
        let scene = templates
            .compose(
                "picture-in-picture",
                Canvas::new(1366, 768),
                &room_of(2),
                None,
            )
            .expect("renders");
        assert_eq!(rects(&scene)[1], (985, 536, 341, 192));
        // Alone, or nobody.
        let scene = templates
            .compose("picture-in-picture", canvas, &room_of(1), None)
            .expect("renders");
        assert_eq!(rects(&scene), [(0, 0, 1920, 1080)]);
        let scene = templates
            .compose("picture-in-picture", canvas, &RoomView::default(), None)
            .expect("renders");
        assert!(scene.regions.is_empty());
    }

    const MINIMAL: &str = r#"{"regions": [
      {% for p in participants %}
        {"participant_sid": {{ p.sid | json_encode }}, "content": "camera",
         "rect": {{ rect(x=loop.index0 * 100, y=0, w=100, h=100) | json_encode }}}
        {% if not loop.last %},{% endif %}
      {% endfor %}
    ]}"#;

    #[test]
    fn a_user_file_overrides_a_builtin_and_themes_reach_it() {
        let mut templates = LayoutTemplates::builtin();
        templates.add("my/gallery.tera", MINIMAL).expect("parses");
        assert_eq!(templates.names().len(), 6);
        let scene = templates
            .compose("gallery", Canvas::new(1920, 1080), &room_of(3), None)
            .expect("renders");
        assert_eq!(
            rects(&scene),
            [(0, 0, 100, 100), (100, 0, 100, 100), (200, 0, 100, 100)]
        );
        // Defaults: no track (placeholder), cover, not rounded, no label,
        // black background.
        assert_eq!(
            (
                scene.background,
                scene.regions[0].track_sid.clone(),
                scene.regions[0].fit,
                scene.regions[0].rounded,
                scene.regions[0].label.clone()
            ),
            (Rgba::BLACK, None, Fit::Cover, 0, None)
        );
        let themed = r#"{"background": "{% if theme == "light" %}#ffffffcc{% else %}#000000{% endif %}",
            "regions": []}"#;
        templates.add("themed.tera", themed).expect("parses");
        let light = templates
            .compose("themed-light", Canvas::new(10, 10), &room_of(0), None)
            .expect("renders");
        assert_eq!(
            light.background,
            Rgba {
                r: 255,
                g: 255,
                b: 255,
                a: 0xcc
            }
        );
        let dark = templates
            .compose("themed-dark", Canvas::new(10, 10), &room_of(0), None)
            .expect("renders");
        assert_eq!(dark.background, Rgba::BLACK);
        // The requested name is in the context too.
        templates
            .add(
                "named.tera",
                r#"{"regions": [{"participant_sid": "P1", "content": "camera",
                    "rect": {"x": 0, "y": 0, "w": 1, "h": 1},
                    "label": {"text": {{ layout | json_encode }}, "rect": {"x": 0, "y": 0, "w": 1, "h": 1}}}]}"#,
            )
            .expect("parses");
        let scene = templates
            .compose("named-light", Canvas::new(10, 10), &room_of(1), None)
            .expect("renders");
        assert_eq!(
            scene.regions[0]
                .label
                .as_ref()
                .map(|l| (l.text.as_str(), l.font_px)),
            Some(("named-light", 24))
        );
    }

    #[test]
    fn a_syntax_error_names_the_file_and_line() {
        let mut templates = LayoutTemplates::builtin();
        let source =
            "{\"regions\": [\n{% for p in page %}\n  {{ p.sid | json_encode }\n{% endfor %}\n]}";
        let err = templates.add("layouts/broken.tera", source).unwrap_err();
        let TemplateError::Parse {
            file,
            line,
            message,
        } = &err
        else {
            panic!("{err:?}");
        };
        assert_eq!((file.as_str(), *line), ("layouts/broken.tera", Some(3)));
        assert!(message.contains("{{ p.sid | json_encode }"), "{message}");
        assert!(
            err.to_string()
                .starts_with("layouts/broken.tera, line 3: column "),
            "{err}"
        );
        // An unclosed block is reported where the file ends.
        let err = templates
            .add("open.tera", "line 1\n{% if sharer %}\nline 3\n")
            .unwrap_err();
        assert!(
            matches!(&err, TemplateError::Parse { file, line: Some(_), .. } if file == "open.tera"),
            "{err:?}"
        );
        // Nothing was added.
        assert_eq!(templates.names().len(), 6);
    }

    #[test]
    fn a_failed_add_keeps_the_previous_version() {
        let mut templates = LayoutTemplates::builtin();
        templates.add("mine.tera", MINIMAL).expect("parses");
        assert!(templates.add("mine.tera", "{{ oops").is_err());
        assert!(templates.add("gallery.tera", "{% for %}").is_err());
        let room = room_of(2);
        let canvas = Canvas::new(1920, 1080);
        assert_eq!(
            templates
                .compose("mine", canvas, &room, None)
                .map(|s| s.regions.len()),
            Ok(2)
        );
        assert_eq!(
            templates.compose("gallery", canvas, &room, None),
            Ok(compose_scene(LayoutName::Gallery, canvas, &room, None))
        );
    }

    #[test]
    fn layouts_must_be_self_contained_files() {
        let mut templates = LayoutTemplates::builtin();
        for (source, word) in [
            (
                "{\"regions\": []}\n{% include \"gallery.tera\" %}",
                "include",
            ),
            ("\n\n{%- import \"m.tera\" as m -%}", "import"),
            ("{% extends \"gallery.tera\" %}", "extends"),
            ("x\n{%macro f() %}{% endmacro %}", "macro"),
        ] {
            let err = templates.add("sneaky.tera", source).unwrap_err();
            let expected_line = source.lines().count();
            assert!(
                matches!(&err, TemplateError::Parse { file, line: Some(l), message }
                    if file == "sneaky.tera" && *l == expected_line && message.contains(word)),
                "{err:?}"
            );
        }
        assert!(!templates.names().contains(&"sneaky".to_owned()));
    }

    #[test]
    fn sources_are_kept_within_what_tera_survives() {
        let mut templates = LayoutTemplates::builtin();
        let label_text = |inner: &str| format!("label_text(name={inner}, content=\"camera\")");
        let calls = |depth: usize| {
            let mut call = "\"a\"".to_owned();
            for _ in 0..depth {
                call = label_text(&call);
            }
            call
        };
        let sum = |terms: usize| vec!["1"; terms].join(" + ");
        let nested = |depth: usize, inner: &str| {
            format!(
                "{}{inner}{}",
                "{% for i in range(end=1) %}\n".repeat(depth),
                "{% endfor %}".repeat(depth)
            )
        };
        for (source, line, what) in [
            (
                format!("x\n{{{{ {} }}}}", calls(5)),
                2,
                "nested more than 4",
            ),
            (
                format!("{{{{ {} }}}}", sum(34)),
                1,
                "more than 32 operators",
            ),
            (nested(17, "x"), 17, "nested more than 16"),
            ("{{ (((((1))))) }}".to_owned(), 1, "nested more than 4"),
            (
                "{{ f(a=f(a=f(a=f(a=f(a=".to_owned(),
                1,
                "nested more than 4",
            ),
        ] {
            let err = templates.add("deep.tera", &source).unwrap_err();
            assert!(
                matches!(&err, TemplateError::Parse { line: Some(l), message, .. }
                    if *l == line && message.contains(what)),
                "{err:?}"
            );
        }
        let huge = format!("{{\"regions\": []}}{}", " ".repeat(MAX_SOURCE_BYTES));
        assert!(matches!(
            templates.add("huge.tera", &huge),
            Err(TemplateError::Parse { line: None, .. })
        ));
        // At the limits, on the test thread's 2 MiB stack (debug build):
        // parsed and rendered quickly, no overflow.
        let started = std::time::Instant::now();
        // 4 nested calls, 32 operators in brackets 4 deep, 16 nested loops.
        let inner = format!("{{{{ {} }}}}{{{{ (((({})))) }}}}", calls(4), sum(33));
        let source = format!(
            "{{# {{% include \"ignored in a comment\" %}} #}}\
             {{% raw %}}{{% import %}}{{% endraw %}}{}",
            nested(16, &inner)
        );
        templates
            .add("limits.tera", &source)
            .expect("within the limits");
        let err = templates
            .compose("limits", Canvas::new(10, 10), &room_of(1), None)
            .unwrap_err();
        assert!(matches!(err, TemplateError::Output { .. }), "{err:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    /// The fenced block after "```lang" in the README.
    fn readme_block(lang: &str) -> &'static str {
        let readme = include_str!("../../layouts/README.md");
        let start = readme
            .find(&format!("```{lang}\n"))
            .map(|i| i + lang.len() + 4)
            .expect("block");
        let len = readme[start..].find("```").expect("closed");
        &readme[start..start + len]
    }

    #[test]
    fn the_readme_examples_work() {
        let mut templates = LayoutTemplates::builtin();
        templates
            .add("solo.tera", readme_block("jinja"))
            .expect("parses");
        let canvas = Canvas::new(1280, 720);
        let scene = templates
            .compose("solo-light", canvas, &room_of(3), Some("P2"))
            .expect("renders");
        assert_eq!(scene.background, Rgba::WHITE);
        assert_eq!(rects(&scene), [(0, 0, 1280, 720)]);
        assert_eq!(
            (
                scene.regions[0].participant_sid.as_str(),
                scene.regions[0].track_sid.as_deref(),
                scene.regions[0].fit
            ),
            ("P2", Some("P2-cam"), Fit::Cover)
        );
        let scene = templates
            .compose("solo", canvas, &sharing_room(3), Some("P2"))
            .expect("renders");
        assert_eq!(
            (scene.regions[0].content, scene.regions[0].fit),
            (Content::ScreenShare, Fit::Contain)
        );
        let mut no_camera = room_of(1);
        no_camera.participants[0].camera = None;
        for room in [RoomView::default(), no_camera] {
            assert!(templates.compose("solo", canvas, &room, None).is_ok());
        }
        let sample = parse_output(readme_block("json")).expect("the sample parses");
        assert_eq!(sample.regions.len(), 1);
    }

    #[test]
    fn file_names_must_be_layout_names() {
        let mut templates = LayoutTemplates::builtin();
        for bad in [
            "gallery",
            "x.html",
            ".tera",
            "dir/.tera",
            "with space.tera",
            "é.tera",
        ] {
            let err = templates.add(bad, MINIMAL).unwrap_err();
            assert!(
                matches!(&err, TemplateError::Parse { file, line: None, .. } if file == bad),
                "{bad}: {err:?}"
            );
        }
        templates
            .add("C:\\layouts\\My_Layout-2.tera", MINIMAL)
            .expect("ok");
        assert!(templates.names().contains(&"My_Layout-2".to_owned()));
    }

    fn render_error(source: &str) -> String {
        let mut templates = LayoutTemplates::builtin();
        templates.add("layouts/bad.tera", source).expect("parses");
        match templates.compose("bad", Canvas::new(1920, 1080), &room_of(3), Some("P1")) {
            Err(TemplateError::Render { file, message }) => {
                assert_eq!(file, "layouts/bad.tera");
                message
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn render_errors_name_the_file_and_the_problem() {
        let message = render_error("{{ no_such_thing.x }}");
        assert!(message.contains("no_such_thing.x"), "{message}");
        let message = render_error(
            "{{ optimal_boxes(count=-1, width=1, height=1, gap=0, padding=0, aspect=1) }}",
        );
        assert!(
            message.contains("optimal_boxes: argument `count`"),
            "{message}"
        );
        let message = render_error("{{ crop_rects(canvas=canvas, count=2, colour=1) }}");
        assert!(
            message.contains("crop_rects: unknown argument `colour`"),
            "{message}"
        );
        let message = render_error("{{ active_speaker(canvas=canvas, room=room, host=\"x\") }}");
        assert!(message.contains("`x` is not active-speaker"), "{message}");
        let message = render_error("{{ get_env(name=\"DATABASE_URL\") }}");
        assert!(message.contains("not available"), "{message}");
        let message = render_error("{% for i in range(end=100000000) %}{% endfor %}");
        assert!(message.contains("at most 10000"), "{message}");
        let message = render_error("{{ range(end=3, step_by=0) }}");
        assert!(message.contains("step_by"), "{message}");
        let message = render_error(
            "{% for i in range(end=10000) %}{{ participants | json_encode }}{% endfor %}",
        );
        assert!(message.contains("larger than 1024 KiB"), "{message}");
        let message = render_error("{{ no_such_function() }}");
        assert!(message.contains("no_such_function"), "{message}");
    }

    fn output_error(source: &str) -> String {
        let mut templates = LayoutTemplates::builtin();
        templates.add("bad.tera", source).expect("parses");
        match templates.compose("bad", Canvas::new(1920, 1080), &sharing_room(2), None) {
            Err(TemplateError::Output { file, message }) => {
                assert_eq!(file, "bad.tera");
                message
            }
            other => panic!("{other:?}"),
        }
    }

    fn one_region(fields: &str) -> String {
        format!(
            "{{\"regions\": [{{\"participant_sid\": \"P1\", \"content\": \"camera\", {fields}}}]}}"
        )
    }

    const RECT: &str = "\"rect\": {\"x\": 0, \"y\": 0, \"w\": 10, \"h\": 10}";

    #[test]
    fn invalid_output_is_a_clear_error() {
        let message = output_error("{\"regions\": [\n  {\"participant_sid\": \"P1\",}\n]}");
        assert!(
            message.contains("line 2") && message.contains("{\"participant_sid\": \"P1\",}"),
            "{message}"
        );
        let message = output_error("not json");
        assert!(message.contains("line 1"), "{message}");
        let message = output_error("{\"regions\": [], \"colour\": 1}");
        assert!(message.contains("unknown field `colour`"), "{message}");
        let message = output_error("{\"background\": \"red\", \"regions\": []}");
        assert!(message.contains("background `red`"), "{message}");
        let message = output_error(&one_region(
            "\"rect\": {\"x\": 0, \"y\": 0, \"w\": -10, \"h\": 10}",
        ));
        assert!(message.contains("negative size"), "{message}");
        let message = output_error(&one_region(
            "\"rect\": {\"x\": 1e9, \"y\": 0, \"w\": 10, \"h\": 10}",
        ));
        assert!(message.contains("out of bounds"), "{message}");
        let message = output_error(&one_region(&format!(
            "{RECT}, \"label\": {{\"text\": \"a\", {RECT}, \"font_px\": 0}}"
        )));
        assert!(message.contains("font_px 0"), "{message}");
        let message = output_error(&format!(
            "{{\"regions\": [{}]}}",
            vec![format!("{{\"participant_sid\": \"P1\", \"content\": \"camera\", {RECT}}}"); 257]
                .join(",")
        ));
        assert!(message.contains("257 regions"), "{message}");
    }

    #[test]
    fn unknown_participants_and_tracks_are_rejected() {
        let message = output_error(&one_region(RECT).replace("\"P1\"", "\"ghost\""));
        assert_eq!(message, "region 0 (participant `ghost`): not in the room");
        let message = output_error(&one_region(&format!("\"track_sid\": \"P2-cam\", {RECT}")));
        assert!(
            message.contains("track `P2-cam` is not this participant's camera"),
            "{message}"
        );
        let message = output_error(
            &one_region(&format!("\"track_sid\": \"P1-cam\", {RECT}"))
                .replace("\"camera\"", "\"screen_share\""),
        );
        assert!(
            message.contains("track `P1-cam` is not this participant's screen share"),
            "{message}"
        );
        // The right tracks are fine.
        let mut templates = LayoutTemplates::builtin();
        let ok = one_region(&format!("\"track_sid\": \"P1-screen\", {RECT}"))
            .replace("\"camera\"", "\"screen_share\"");
        templates.add("ok.tera", &ok).expect("parses");
        let scene = templates
            .compose("ok", Canvas::new(100, 100), &sharing_room(1), None)
            .expect("valid");
        assert_eq!(scene.regions[0].track_sid.as_deref(), Some("P1-screen"));
    }

    #[test]
    fn regions_are_drawn_in_z_order() {
        let mut templates = LayoutTemplates::builtin();
        let source = r#"{"regions": [
            {"participant_sid": "P1", "content": "camera", "z": 7, "rect": {"x": 0.5, "y": 0.4, "w": 10.2, "h": 10}},
            {"participant_sid": "P2", "content": "camera", "z": 3, "rect": {"x": 0, "y": 0, "w": 5, "h": 5}},
            {"participant_sid": "P3", "content": "camera", "z": 7, "rect": {"x": 0, "y": 0, "w": 5, "h": 5}}
        ]}"#;
        templates.add("stack.tera", source).expect("parses");
        let scene = templates
            .compose("stack", Canvas::new(100, 100), &room_of(3), None)
            .expect("valid");
        let order: Vec<(&str, u32)> = scene
            .regions
            .iter()
            .map(|r| (r.participant_sid.as_str(), r.z))
            .collect();
        assert_eq!(order, [("P2", 0), ("P1", 1), ("P3", 2)]);
        // Edges 0.5 → 1 and 10.7 → 11.
        assert_eq!(xywh(&scene.regions[1].rect), (1, 0, 10, 10));
    }

    #[test]
    fn an_unknown_layout_lists_the_valid_ones() {
        let mut templates = LayoutTemplates::builtin();
        templates.add("pip.tera", PIP).expect("parses");
        for bad in ["mosaic", "", "-light", "grid-blue", "pip-"] {
            let err = templates
                .compose(bad, Canvas::new(1920, 1080), &room_of(1), None)
                .unwrap_err();
            assert_eq!(
                err,
                TemplateError::Unknown {
                    name: bad.to_owned(),
                    valid: templates.names()
                }
            );
        }
        let err = templates
            .compose("mosaic", Canvas::new(1920, 1080), &room_of(1), None)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown layout `mosaic`; valid layouts: active-speaker, crop, gallery, grid, pip, \
             single-speaker, speaker (each also with -light or -dark)"
        );
        assert!(
            templates
                .compose("pip-dark", Canvas::new(1920, 1080), &room_of(1), None)
                .is_ok()
        );
    }

    fn call(
        helper: fn(&HashMap<String, Value>) -> tera::Result<Value>,
        args: Value,
    ) -> tera::Result<Value> {
        let args: HashMap<String, Value> = serde_json::from_value(args).expect("an object");
        helper(&args)
    }

    #[test]
    fn helpers_wrap_the_layout_module() {
        let boxes = call(
            helper_optimal_boxes,
            serde_json::json!({"count": 2, "width": 1920, "height": 1080, "gap": 30,
                               "padding": 60, "aspect": 16.0 / 9.0}),
        )
        .expect("boxes");
        assert_eq!(
            boxes,
            serde_json::json!([{"x": 60, "y": 292, "w": 885, "h": 497},
                               {"x": 975, "y": 292, "w": 885, "h": 497}])
        );
        let moved = call(
            helper_optimal_boxes,
            serde_json::json!({"count": 1, "width": 400, "height": 200, "gap": 0,
                               "padding": 0, "aspect": 2, "x": 1000, "y": 10}),
        )
        .expect("boxes");
        assert_eq!(
            moved,
            serde_json::json!([{"x": 1000, "y": 10, "w": 400, "h": 200}])
        );
        // Boxes never shrink below Mux's 160×90 minimum (centred, so
        // overflowing a small frame).
        let small = call(
            helper_optimal_boxes,
            serde_json::json!({"count": 1, "width": 100, "height": 100, "gap": 0,
                               "padding": 0, "aspect": 1}),
        )
        .expect("boxes");
        assert_eq!(
            small,
            serde_json::json!([{"x": -30, "y": 0, "w": 160, "h": 100}])
        );
        let crop = call(
            helper_crop_rects,
            serde_json::json!({"canvas": {"width": 1920, "height": 1080}, "count": 3}),
        )
        .expect("rects");
        assert_eq!(
            crop[1],
            serde_json::json!({"x": 639, "y": 0, "w": 640, "h": 1080})
        );
        let text = call(
            helper_label_text,
            serde_json::json!({"name": "James\nBond", "content": "screen_share"}),
        )
        .expect("text");
        assert_eq!(text, "James' Screen");
        let none = call(
            helper_label,
            serde_json::json!({"name": "", "content": "camera", "large": true,
                               "rect": {"x": 0, "y": 0, "w": 10, "h": 10}}),
        )
        .expect("label");
        assert_eq!(none, Value::Null);
        let tiles = call(
            helper_active_speaker,
            serde_json::json!({"canvas": {"width": 1920, "height": 1080},
                               "room": room_of(2), "speaker": "P2"}),
        )
        .expect("tiles");
        assert_eq!(tiles[0]["participant"]["sid"], "P2");
        assert_eq!(tiles[0]["video"]["track_sid"], "P2-cam");
        assert!(
            call(
                helper_livekit_grid,
                serde_json::json!({"canvas": {"width": 1920, "height": 1080},
                                   "room": room_of(2), "speaker": 5}),
            )
            .is_err()
        );
        assert!(call(helper_rect, serde_json::json!({"x": 0, "y": 0, "w": 1})).is_err());
    }
}
