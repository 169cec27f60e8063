//! What one script does, read from its syntax tree (oxc): which browser APIs it calls, and in
//! which context (on load, on a page-wide gesture, on one control, in a loop or a re-firing
//! event), with constant strings folded so that `el["request" + "Full" + "screen"]()` reads as
//! what it is.
//!
//! Two passes over the tree. The first learns names: string constants, aliases of API members,
//! page-wide elements, and in which contexts each named function is invoked (directly, as a
//! listener, as a timer callback, by itself). The second visits every call with the context
//! of its place in the code joined with that of its enclosing named functions, and records
//! [`Hit`]s. Parse errors never stop it: whatever parsed is read.

use oxc_allocator::Allocator;
use oxc_ast::ast::*;
use oxc_ast_visit::{walk, Visit};
use oxc_span::{GetSpan, SourceType};
use oxc_syntax::scope::ScopeFlags;
use std::collections::HashMap;

/// A behaviour seen in a script, before scoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Behaviour {
    /// Fullscreen requested on load, on any click or key anywhere, or again and again.
    FullscreenAuto,
    /// Fullscreen requested by one control (a game's or viewer's button).
    FullscreenOnControl,
    /// `navigator.keyboard.lock()` without the visitor asking for it.
    KeyboardLockAuto,
    /// Keyboard lock behind one control.
    KeyboardLockOnControl,
    /// Pointer lock without the visitor asking for it.
    PointerLockAuto,
    /// Pointer lock behind one control.
    PointerLockOnControl,
    /// A `beforeunload` handler that asks the visitor to stay.
    BeforeUnloadTrap,
    /// `history.pushState` in a loop or on every back step.
    HistoryFlood,
    /// `alert`/`confirm`/`prompt` in a loop, a re-firing event, or many at once.
    DialogLoop,
    /// `window.open` in a loop or many at once.
    WindowOpenLoop,
    /// `print()` in a loop.
    PrintLoop,
    /// Downloads started in a loop.
    DownloadLoop,
    /// A key handler that cancels Escape, F11 or every key.
    EscapeBlocked,
    /// A key handler that cancels F12 or developer-tool shortcuts only.
    DevtoolsKeysBlocked,
    /// The cursor hidden by script.
    CursorHidden,
    /// The context menu cancelled.
    ContextMenuBlocked,
    /// `debugger` run in a loop or timer (stalls anyone with developer tools open).
    DebuggerLoop,
    /// `console` methods replaced or the console cleared in a loop.
    ConsoleTampering,
    /// Many `eval`/`unescape`/`atob`/`fromCharCode`/`Function` calls for the code's size.
    Obfuscation,
    /// A phone-number-like query parameter read and text written into the page.
    NumberFromQuery,
    /// Audio played in a loop (`loop = true` with `play()`, or `play()` repeated).
    AudioLoop,
}

/// One behaviour and where it was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// What was seen.
    pub behaviour: Behaviour,
    /// 1-based line in the script.
    pub line: u32,
}

/// What reading one script gave.
#[derive(Debug, Default)]
pub struct ScriptReport {
    /// Behaviours, at most one per behaviour and line.
    pub hits: Vec<Hit>,
    /// Syntax errors the parser recovered from (or stopped at).
    pub errors: usize,
    /// A phone-like query parameter is read (a page may write it with another script).
    pub reads_number_param: bool,
    /// Text is written into the page (`document.write`, `innerHTML`, …).
    pub writes_page: bool,
}

/// Contexts a piece of code may run in (bits).
type Ctx = u16;
const LOAD: Ctx = 1;
const PAGE_GESTURE: Ctx = 2;
const CONTROL: Ctx = 4;
const LOOP: Ctx = 8;
const UNLOAD: Ctx = 16;
const KEY: Ctx = 32;
const MENU: Ctx = 64;
/// A `fullscreenchange` listener: requesting fullscreen again there traps the visitor, but
/// locking the keyboard there is what remote-desktop viewers do when the visitor enters it.
const FS_CHANGE: Ctx = 128;
const AUTO: Ctx = LOAD | PAGE_GESTURE | LOOP;

/// Largest script read; beyond this the rest is ignored.
pub const MAX_SCRIPT: usize = 1024 * 1024;
/// Deepest bracket nesting parsed (the parser and the visitor recurse).
const MAX_DEPTH: usize = 400;
/// Nesting that any thread's stack holds.
const SHALLOW: usize = 48;
/// Longest folded string kept.
const MAX_FOLD: usize = 512;
/// Most hits kept per script.
const MAX_HITS: usize = 200;

/// How a script reached the page, which sets the context of its top level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A `<script>` element: runs on load.
    Script,
    /// An event attribute (`onclick="…"`): runs when that event fires on that element.
    Attribute {
        /// The event, without `on`.
        event: &'static str,
        /// Whether the element is the page itself (`body`, `html`).
        page_wide: bool,
    },
}

/// Reads one script.
pub fn analyze(source: &str, origin: Origin) -> ScriptReport {
    let source = truncate(source, MAX_SCRIPT);
    if nesting_depth(source) > MAX_DEPTH {
        return ScriptReport {
            hits: vec![Hit {
                behaviour: Behaviour::Obfuscation,
                line: 1,
            }],
            errors: 1,
            ..ScriptReport::default()
        };
    }
    if nesting_depth(source) > SHALLOW {
        // deep nesting: parse on a thread whose stack is sure to hold it
        return std::thread::scope(|scope| {
            std::thread::Builder::new()
                .stack_size(256 * 1024 * 1024)
                .spawn_scoped(scope, || parse_and_read(source, origin))
                .ok()
                .and_then(|t| t.join().ok())
                .unwrap_or_default()
        });
    }
    parse_and_read(source, origin)
}

fn parse_and_read(source: &str, origin: Origin) -> ScriptReport {
    // An event attribute's code is a function body (`return false` is legal there): read it
    // as one, on the same line so that line numbers hold.
    let wrapped;
    let source = match origin {
        Origin::Script => source,
        Origin::Attribute { .. } => {
            wrapped = format!("(function (event) {{{source}\n}})");
            wrapped.as_str()
        }
    };
    let allocator = Allocator::default();
    let parsed = oxc_parser::Parser::new(&allocator, source, SourceType::script()).parse();
    let top = match origin {
        Origin::Script => LOAD,
        Origin::Attribute { event, page_wide } => event_ctx(event, page_wide),
    };
    let mut learn = Learn {
        top,
        ..Learn::default()
    };
    learn.visit_program(&parsed.program);
    let names = learn.finish();
    let mut find = Find {
        source,
        names: &names,
        ctx: vec![top],
        key_frames: Vec::new(),
        hits: Vec::new(),
        obfuscation: 0,
        query_param: false,
        dom_write: false,
        loop_set: false,
        play: 0,
        dialogs_at_load: (0, 0),
        opens_at_load: (0, 0),
        line_starts: std::iter::once(0)
            .chain(
                source
                    .bytes()
                    .enumerate()
                    .filter(|(_, b)| *b == b'\n')
                    .map(|(i, _)| i as u32 + 1),
            )
            .collect(),
        phone_param_named: None,
        fn_names: Vec::new(),
    };
    if let (Origin::Attribute { .. }, Some(Statement::ExpressionStatement(handler))) =
        (origin, parsed.program.body.first())
    {
        find.check_handler_cancels(top, &handler.expression);
        if top & KEY != 0 {
            find.key_frames.push(KeyFrame {
                page_wide: top & PAGE_GESTURE != 0,
                ..KeyFrame::default()
            });
        }
    }
    find.visit_program(&parsed.program);
    if let Some(frame) = find.key_frames.pop() {
        find.close_key_frame(frame);
    }
    let (reads_number_param, writes_page) = (find.query_param, find.dom_write);
    let mut hits = find.finish();
    hits.truncate(MAX_HITS);
    ScriptReport {
        hits,
        errors: parsed.diagnostics.len() + usize::from(parsed.panicked),
        reads_number_param,
        writes_page,
    }
}

/// `s` cut at a character boundary at most `max` bytes long.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A cheap upper bound of bracket nesting, to refuse inputs that would exhaust the stack.
fn nesting_depth(s: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for b in s.bytes() {
        match b {
            b'(' | b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// The context an event's listener runs in.
fn event_ctx(event: &str, page_wide: bool) -> Ctx {
    let gesture = if page_wide { PAGE_GESTURE } else { CONTROL };
    match event.to_ascii_lowercase().as_str() {
        "load" | "domcontentloaded" | "readystatechange" | "pageshow" => LOAD,
        "keydown" | "keyup" | "keypress" => gesture | KEY,
        "click" | "mousedown" | "mouseup" | "pointerdown" | "pointerup" | "touchstart"
        | "touchend" | "dblclick" | "auxclick" | "mousemove" | "mouseover" | "mouseenter"
        | "scroll" | "wheel" => gesture,
        "beforeunload" | "unload" | "pagehide" => UNLOAD,
        "popstate" | "hashchange" | "blur" | "focusout" | "visibilitychange" | "resize" => LOOP,
        "fullscreenchange" | "webkitfullscreenchange" | "mozfullscreenchange" => FS_CHANGE,
        "contextmenu" => MENU,
        _ => CONTROL,
    }
}

/// Names learnt in the first pass.
#[derive(Default)]
struct Names {
    /// String constants: `var a = "requestFull" + "screen"`.
    strings: HashMap<String, String>,
    /// Aliases of API members: `var f = el.requestFullscreen || el.webkitRequestFullscreen`.
    members: HashMap<String, String>,
    /// Variables that hold the page itself (`var b = document.body`).
    page_vars: Vec<String>,
    /// Contexts each named function is invoked in.
    fn_ctx: HashMap<String, Ctx>,
}

#[derive(Default)]
struct Learn {
    top: Ctx,
    names: Names,
    /// Enclosing named functions.
    stack: Vec<String>,
    /// Lexical context stack.
    ctx: Vec<Ctx>,
    /// Calls between named functions (caller, callee).
    edges: Vec<(String, String)>,
}

impl Learn {
    fn here(&self) -> Ctx {
        self.ctx.last().copied().unwrap_or(self.top)
    }

    fn invoke(&mut self, name: &str, ctx: Ctx) {
        *self.names.fn_ctx.entry(name.to_string()).or_default() |= ctx;
        if let Some(caller) = self.stack.last() {
            if caller == name {
                *self.names.fn_ctx.entry(name.to_string()).or_default() |= LOOP;
            } else if self.edges.len() < 10_000 {
                self.edges.push((caller.clone(), name.to_string()));
            }
        }
    }

    fn finish(mut self) -> Names {
        for _ in 0..4 {
            for (caller, callee) in &self.edges {
                let c = self.names.fn_ctx.get(caller).copied().unwrap_or(0);
                *self.names.fn_ctx.entry(callee.clone()).or_default() |= c;
            }
        }
        self.names
    }
}

impl<'a> Visit<'a> for Learn {
    fn visit_variable_declarator(&mut self, it: &VariableDeclarator<'a>) {
        if let (BindingPattern::BindingIdentifier(id), Some(init)) = (&it.id, &it.init) {
            let name = id.name.as_str().to_string();
            if let Some(s) = fold(init, &self.names, 0) {
                self.names.strings.insert(name.clone(), s);
            } else if let Some(m) = alias_member(init, &self.names) {
                self.names.members.insert(name.clone(), m);
            } else if is_page(init, &self.names) {
                self.names.page_vars.push(name.clone());
            }
            if let Expression::FunctionExpression(_) | Expression::ArrowFunctionExpression(_) =
                init.without_parentheses()
            {
                self.stack.push(name);
                walk::walk_variable_declarator(self, it);
                self.stack.pop();
                return;
            }
        }
        walk::walk_variable_declarator(self, it);
    }

    fn visit_function(&mut self, it: &Function<'a>, flags: ScopeFlags) {
        let named = it.id.as_ref().map(|id| id.name.as_str().to_string());
        if let Some(n) = &named {
            self.stack.push(n.clone());
        }
        walk::walk_function(self, it, flags);
        if named.is_some() {
            self.stack.pop();
        }
    }

    fn visit_call_expression(&mut self, it: &CallExpression<'a>) {
        let here = self.here();
        if let Expression::Identifier(id) = it.callee.without_parentheses() {
            self.invoke(id.name.as_str(), here);
        }
        if let Some((ctx, Some(Expression::Identifier(id)))) = registration(it, &self.names) {
            self.invoke(id.name.as_str(), ctx | (here & LOOP));
        }
        walk::walk_call_expression(self, it);
    }

    fn visit_assignment_expression(&mut self, it: &AssignmentExpression<'a>) {
        if let Some(ctx) = handler_assignment(it, &self.names) {
            if let Expression::Identifier(id) = it.right.without_parentheses() {
                self.invoke(id.name.as_str(), ctx);
            }
        }
        walk::walk_assignment_expression(self, it);
    }
}

/// Whether `e` names the page itself: `window`, `document`, `document.body`, …
fn is_page(e: &Expression, names: &Names) -> bool {
    match e.without_parentheses() {
        Expression::Identifier(id) => {
            let n = id.name.as_str();
            matches!(n, "window" | "document" | "self" | "top" | "globalThis")
                || names.page_vars.iter().any(|v| v == n)
        }
        Expression::ThisExpression(_) => true,
        Expression::CallExpression(call) => {
            // document.querySelector("body"), $(document), $("body"), jQuery(window)
            let arg = call.arguments.first().and_then(|a| a.as_expression());
            let callee = callee_name(&call.callee, names).unwrap_or_default();
            let arg_page = arg.is_some_and(|a| {
                is_page(a, names)
                    || fold(a, names, 0).is_some_and(|s| matches!(s.as_str(), "body" | "html"))
            });
            matches!(
                callee.as_str(),
                "querySelector" | "$" | "jQuery" | "getElementsByTagName"
            ) && arg_page
        }
        Expression::ComputedMemberExpression(m) => is_page(&m.object, names),
        Expression::StaticMemberExpression(m) => {
            matches!(m.property.name.as_str(), "body" | "documentElement")
                || (is_page(&m.object, names)
                    && matches!(m.property.name.as_str(), "document" | "window"))
        }
        _ => false,
    }
}

/// A listener registration: `target.addEventListener(type, f)`, jQuery's `.on(type, f)`,
/// `.click(f)`, `$(f)`, `setInterval(f)`, `setTimeout(f)`: the context `f` runs in, and `f`.
fn registration<'b, 'a>(
    call: &'b CallExpression<'a>,
    names: &Names,
) -> Option<(Ctx, Option<&'b Expression<'a>>)> {
    let name = callee_name(&call.callee, names)?;
    let arg = |i: usize| call.arguments.get(i).and_then(|a| a.as_expression());
    let target = match call.callee.without_parentheses() {
        Expression::StaticMemberExpression(m) => Some(&m.object),
        Expression::ComputedMemberExpression(m) => Some(&m.object),
        _ => None,
    };
    let page = target.is_none_or(|t| is_page(t, names));
    match name.as_str() {
        "addEventListener" | "on" | "bind" | "attachEvent" => {
            let event = fold(arg(0)?, names, 0)?;
            let event = event.trim_start_matches("on");
            Some((event_ctx(event, page), arg(1)))
        }
        "setInterval" | "requestAnimationFrame" => Some((LOOP, arg(0))),
        "setTimeout" => Some((0, arg(0))),
        "ready" => Some((LOAD, arg(0))),
        "$" | "jQuery"
            if matches!(
                arg(0),
                Some(Expression::FunctionExpression(_) | Expression::ArrowFunctionExpression(_))
            ) =>
        {
            Some((LOAD, arg(0)))
        }
        "click" | "keydown" | "keyup" | "mousedown" | "contextmenu" | "mousemove"
            if !call.arguments.is_empty() =>
        {
            Some((event_ctx(&name, page), arg(0)))
        }
        _ => None,
    }
}

/// `target.onclick = f`: the context `f` runs in.
fn handler_assignment(it: &AssignmentExpression, names: &Names) -> Option<Ctx> {
    let (object, prop) = assigned_member(&it.left, names)?;
    let event = prop.strip_prefix("on")?;
    if matches!(it.right.without_parentheses(), Expression::NullLiteral(_)) {
        return None;
    }
    Some(event_ctx(event, is_page(object, names)))
}

/// The object and property an assignment writes, when it writes a member.
fn assigned_member<'b, 'a>(
    left: &'b AssignmentTarget<'a>,
    names: &Names,
) -> Option<(&'b Expression<'a>, String)> {
    match left {
        AssignmentTarget::StaticMemberExpression(m) => {
            Some((&m.object, m.property.name.as_str().to_string()))
        }
        AssignmentTarget::ComputedMemberExpression(m) => {
            Some((&m.object, fold(&m.expression, names, 0)?))
        }
        _ => None,
    }
}

/// The name a call calls: the last property, folded, or the identifier (through aliases).
fn callee_name(callee: &Expression, names: &Names) -> Option<String> {
    match callee.without_parentheses() {
        Expression::Identifier(id) => {
            let n = id.name.as_str();
            Some(
                names
                    .members
                    .get(n)
                    .cloned()
                    .unwrap_or_else(|| n.to_string()),
            )
        }
        Expression::StaticMemberExpression(m) => {
            let p = m.property.name.as_str();
            if matches!(p, "call" | "apply" | "bind") {
                if let Some(inner) = callee_name(&m.object, names) {
                    return Some(inner);
                }
            }
            Some(p.to_string())
        }
        Expression::ComputedMemberExpression(m) => fold(&m.expression, names, 0),
        Expression::SequenceExpression(s) => callee_name(s.expressions.last()?, names),
        Expression::LogicalExpression(l) => {
            callee_name(&l.left, names).or_else(|| callee_name(&l.right, names))
        }
        _ => None,
    }
}

/// The last property name of a member expression (`navigator.keyboard` → `keyboard`).
fn member_name(e: &Expression, names: &Names) -> Option<String> {
    match e.without_parentheses() {
        Expression::StaticMemberExpression(m) => Some(m.property.name.as_str().to_string()),
        Expression::ComputedMemberExpression(m) => fold(&m.expression, names, 0),
        Expression::Identifier(id) => Some(id.name.as_str().to_string()),
        _ => None,
    }
}

/// An alias of an API member: `el.requestFullscreen || el.webkitRequestFullscreen`.
fn alias_member(e: &Expression, names: &Names) -> Option<String> {
    match e.without_parentheses() {
        Expression::LogicalExpression(l) => {
            alias_member(&l.left, names).or_else(|| alias_member(&l.right, names))
        }
        Expression::StaticMemberExpression(_) | Expression::ComputedMemberExpression(_) => {
            let n = member_name(e, names)?;
            api_of(&n).map(|_| n)
        }
        _ => None,
    }
}

/// Which locking API a member name belongs to.
fn api_of(name: &str) -> Option<Api> {
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "requestfullscreen"
        | "webkitrequestfullscreen"
        | "webkitrequestfullScreen"
        | "mozrequestfullscreen"
        | "msrequestfullscreen"
        | "webkitenterfullscreen" => Some(Api::Fullscreen),
        "requestpointerlock" | "mozrequestpointerlock" | "webkitrequestpointerlock" => {
            Some(Api::PointerLock)
        }
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    Fullscreen,
    PointerLock,
}

/// Folds a constant string expression: literals, templates without substitutions,
/// concatenation, known constants, `String.fromCharCode(…)`, `unescape("%xx…")`,
/// `[…].join("")` and `"…".split("").reverse().join("")`.
fn fold(e: &Expression, names: &Names, depth: u8) -> Option<String> {
    if depth > 12 {
        return None;
    }
    let out = match e.without_parentheses() {
        Expression::StringLiteral(s) => s.value.as_str().to_string(),
        Expression::TemplateLiteral(t) if t.expressions.is_empty() => t
            .quasis
            .iter()
            .map(|q| q.value.cooked.as_ref().map(|c| c.as_str()).unwrap_or(""))
            .collect(),
        Expression::NumericLiteral(n) if n.value.fract() == 0.0 && n.value.abs() < 1e15 => {
            format!("{}", n.value as i64)
        }
        Expression::BinaryExpression(b) if b.operator == BinaryOperator::Addition => {
            let mut s = fold(&b.left, names, depth + 1)?;
            s.push_str(&fold(&b.right, names, depth + 1)?);
            s
        }
        Expression::Identifier(id) => names.strings.get(id.name.as_str())?.clone(),
        Expression::CallExpression(call) => fold_call(call, names, depth)?,
        _ => return None,
    };
    (out.len() <= MAX_FOLD).then_some(out)
}

fn fold_call(call: &CallExpression, names: &Names, depth: u8) -> Option<String> {
    let name = callee_name(&call.callee, names)?;
    let args: Vec<&Expression> = call
        .arguments
        .iter()
        .filter_map(|a| a.as_expression())
        .collect();
    match name.as_str() {
        "fromCharCode" => args
            .iter()
            .map(|a| match a.without_parentheses() {
                Expression::NumericLiteral(n) => char::from_u32(n.value as u32),
                _ => None,
            })
            .collect(),
        "unescape" | "decodeURIComponent" | "decodeURI" => {
            percent_decode(&fold(args.first()?, names, depth + 1)?)
        }
        "join" => {
            let sep = match args.first() {
                Some(a) => fold(a, names, depth + 1)?,
                None => ",".into(),
            };
            let Expression::StaticMemberExpression(m) = call.callee.without_parentheses() else {
                return None;
            };
            match m.object.without_parentheses() {
                Expression::ArrayExpression(arr) => {
                    let parts: Option<Vec<String>> = arr
                        .elements
                        .iter()
                        .map(|el| fold(el.as_expression()?, names, depth + 1))
                        .collect();
                    Some(parts?.join(&sep))
                }
                Expression::CallExpression(inner) => {
                    // "…".split("").reverse().join("")
                    let reversed = callee_name(&inner.callee, names)? == "reverse";
                    let Expression::StaticMemberExpression(r) = inner.callee.without_parentheses()
                    else {
                        return None;
                    };
                    let Expression::CallExpression(split) = r.object.without_parentheses() else {
                        return None;
                    };
                    let Expression::StaticMemberExpression(s) = split.callee.without_parentheses()
                    else {
                        return None;
                    };
                    if !reversed || s.property.name.as_str() != "split" {
                        return None;
                    }
                    let text = fold(&s.object, names, depth + 1)?;
                    Some(text.chars().rev().collect::<String>())
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// Decodes `%xx` and `%uxxxx` escapes; `None` on malformed input.
fn percent_decode(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut bytes = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '%' {
            if chars.get(i + 1) == Some(&'u') {
                let hex: String = chars.get(i + 2..i + 6)?.iter().collect();
                out.push_str(&String::from_utf8_lossy(&std::mem::take(&mut bytes)));
                out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                i += 6;
            } else {
                let hex: String = chars.get(i + 1..i + 3)?.iter().collect();
                bytes.push(u8::from_str_radix(&hex, 16).ok()?);
                i += 3;
            }
        } else {
            out.push_str(&String::from_utf8_lossy(&std::mem::take(&mut bytes)));
            out.push(chars[i]);
            i += 1;
        }
    }
    out.push_str(&String::from_utf8_lossy(&bytes));
    Some(out)
}

/// What a key handler compares the key against, and whether it cancels the event.
#[derive(Default)]
struct KeyFrame {
    /// The listener is on the page itself, not on one element (a game's canvas, a viewer).
    page_wide: bool,
    escape: bool,
    devtools: bool,
    other: bool,
    cancels: bool,
    line: u32,
}

struct Find<'s, 'n> {
    source: &'s str,
    names: &'n Names,
    ctx: Vec<Ctx>,
    key_frames: Vec<KeyFrame>,
    hits: Vec<Hit>,
    obfuscation: usize,
    query_param: bool,
    dom_write: bool,
    loop_set: bool,
    play: usize,
    /// Dialogs called on load, outside any loop: (count, first line).
    dialogs_at_load: (usize, u32),
    /// `window.open` called on load or a page-wide gesture: (count, first line).
    opens_at_load: (usize, u32),
    /// Byte offsets where lines start (0 first), for line numbers in O(log n).
    line_starts: Vec<u32>,
    /// Whether the source names a phone-like query parameter (computed once).
    phone_param_named: Option<bool>,
    fn_names: Vec<Option<String>>,
}

impl Find<'_, '_> {
    fn here(&self) -> Ctx {
        let lexical = self.ctx.last().copied().unwrap_or(LOAD);
        let named = self
            .fn_names
            .iter()
            .flatten()
            .filter_map(|n| self.names.fn_ctx.get(n))
            .fold(0, |a, c| a | c);
        lexical
            | (named & (LOOP | KEY | MENU | UNLOAD | FS_CHANGE))
            | if lexical & (LOAD | LOOP) != 0 && named != 0 {
                // a named function defined at top level runs where it is invoked
                named
            } else {
                0
            }
    }

    fn line(&self, span: oxc_span::Span) -> u32 {
        // the number of line starts at or before the offset
        self.line_starts
            .partition_point(|&start| start <= span.start) as u32
    }

    fn hit(&mut self, behaviour: Behaviour, span: oxc_span::Span) {
        let line = self.line(span);
        if self.hits.len() < MAX_HITS
            && !self
                .hits
                .iter()
                .any(|h| h.behaviour == behaviour && h.line == line)
        {
            self.hits.push(Hit { behaviour, line });
        }
    }

    /// Visits a function body in the context `ctx` (a listener or timer callback).
    fn enter(&mut self, ctx: Ctx, f: impl FnOnce(&mut Self)) {
        let keyed = ctx & KEY != 0;
        if keyed {
            self.key_frames.push(KeyFrame {
                page_wide: ctx & (PAGE_GESTURE | LOAD) != 0,
                ..KeyFrame::default()
            });
        }
        self.ctx.push(ctx);
        f(self);
        self.ctx.pop();
        if keyed {
            if let Some(frame) = self.key_frames.pop() {
                self.close_key_frame(frame);
            }
        }
    }

    fn close_key_frame(&mut self, k: KeyFrame) {
        if !k.cancels || !k.page_wide {
            return;
        }
        let b = if k.escape || (!k.devtools && !k.other) {
            Behaviour::EscapeBlocked
        } else if k.devtools {
            Behaviour::DevtoolsKeysBlocked
        } else {
            return;
        };
        let line = k.line;
        if !self.hits.iter().any(|h| h.behaviour == b && h.line == line) {
            self.hits.push(Hit { behaviour: b, line });
        }
    }

    fn visit_handler<'a>(&mut self, ctx: Ctx, handler: &Expression<'a>) {
        let ctx = ctx | (self.here() & LOOP);
        match handler.without_parentheses() {
            Expression::FunctionExpression(f) => {
                let line = self.line(f.span);
                self.enter(ctx, |me| {
                    if let Some(k) = me.key_frames.last_mut() {
                        k.line = line;
                    }
                    me.visit_function(f, ScopeFlags::Function)
                });
                self.check_handler_cancels(ctx, handler);
            }
            Expression::ArrowFunctionExpression(f) => {
                let line = self.line(f.span);
                self.enter(ctx, |me| {
                    if let Some(k) = me.key_frames.last_mut() {
                        k.line = line;
                    }
                    me.visit_arrow_function_expression(f)
                });
                self.check_handler_cancels(ctx, handler);
            }
            Expression::StringLiteral(s) => {
                // setTimeout("code") or setInterval("code"): read the string as code
                let report = analyze_nested(s.value.as_str(), ctx);
                for h in report {
                    self.hit(h, s.span);
                }
            }
            other => self.visit_expression(other),
        }
    }

    /// Menu and unload handlers: do they cancel or ask?
    fn check_handler_cancels(&mut self, ctx: Ctx, handler: &Expression) {
        if ctx & (MENU | UNLOAD) == 0 {
            return;
        }
        if handler_cancels(handler) {
            if ctx & MENU != 0 {
                self.hit(Behaviour::ContextMenuBlocked, handler.span());
            }
            if ctx & UNLOAD != 0 {
                self.hit(Behaviour::BeforeUnloadTrap, handler.span());
            }
        }
    }

    fn call(&mut self, it: &CallExpression) {
        let Some(name) = callee_name(&it.callee, self.names) else {
            return;
        };
        let ctx = self.here();
        let object = match it.callee.without_parentheses() {
            Expression::StaticMemberExpression(m) => member_name(&m.object, self.names),
            Expression::ComputedMemberExpression(m) => member_name(&m.object, self.names),
            _ => None,
        };
        let span = it.span;
        match (api_of(&name), name.as_str()) {
            (Some(Api::Fullscreen), _) => self.hit(
                if ctx & (AUTO | FS_CHANGE) != 0 {
                    Behaviour::FullscreenAuto
                } else {
                    Behaviour::FullscreenOnControl
                },
                span,
            ),
            (Some(Api::PointerLock), _) => self.hit(
                if ctx & AUTO != 0 {
                    Behaviour::PointerLockAuto
                } else {
                    Behaviour::PointerLockOnControl
                },
                span,
            ),
            (None, "lock") if object.as_deref() == Some("keyboard") => self.hit(
                if ctx & AUTO != 0 {
                    Behaviour::KeyboardLockAuto
                } else {
                    Behaviour::KeyboardLockOnControl
                },
                span,
            ),
            (None, "alert" | "confirm" | "prompt") => {
                if ctx & (LOOP | UNLOAD) != 0 {
                    self.hit(Behaviour::DialogLoop, span)
                } else if ctx & LOAD != 0 {
                    let l = self.line(span);
                    count_first(&mut self.dialogs_at_load, l);
                }
            }
            (None, "open")
                if matches!(object.as_deref(), None | Some("window" | "self" | "top")) =>
            {
                if ctx & LOOP != 0 {
                    self.hit(Behaviour::WindowOpenLoop, span)
                } else if ctx & (LOAD | PAGE_GESTURE) != 0 {
                    let l = self.line(span);
                    count_first(&mut self.opens_at_load, l);
                }
            }
            (None, "print") if ctx & LOOP != 0 => self.hit(Behaviour::PrintLoop, span),
            (None, "pushState" | "replaceState") if ctx & LOOP != 0 => {
                self.hit(Behaviour::HistoryFlood, span)
            }
            (None, "msSaveBlob" | "msSaveOrOpenBlob") if ctx & LOOP != 0 => {
                self.hit(Behaviour::DownloadLoop, span)
            }
            (None, "setAttribute") => {
                let a = it.arguments.first().and_then(|a| a.as_expression());
                let v = it.arguments.get(1).and_then(|a| a.as_expression());
                let attr = a.and_then(|a| fold(a, self.names, 0)).unwrap_or_default();
                if attr == "download" && ctx & LOOP != 0 {
                    self.hit(Behaviour::DownloadLoop, span)
                }
                if attr == "style" {
                    if let Some(v) = v.and_then(|v| fold(v, self.names, 0)) {
                        if css_hides_cursor(&v) {
                            self.hit(Behaviour::CursorHidden, span)
                        }
                    }
                }
            }
            (None, "preventDefault" | "stopImmediatePropagation") => {
                if let Some(k) = self.key_frames.last_mut() {
                    k.cancels = true;
                }
            }
            (None, "eval" | "unescape" | "atob" | "fromCharCode" | "Function") => {
                self.obfuscation += 1
            }
            (None, "clear") if object.as_deref() == Some("console") && ctx & LOOP != 0 => {
                self.hit(Behaviour::ConsoleTampering, span)
            }
            (None, "get" | "has") => {
                let a = it.arguments.first().and_then(|a| a.as_expression());
                if a.and_then(|a| fold(a, self.names, 0))
                    .is_some_and(|p| phone_param(&p))
                {
                    self.query_param = true;
                }
            }
            (None, "write" | "writeln" | "insertAdjacentHTML" | "append" | "prepend")
                if !it.arguments.is_empty() =>
            {
                self.dom_write = true
            }
            (None, "play") => {
                self.play += 1;
                if ctx & LOOP != 0 {
                    self.hit(Behaviour::AudioLoop, span)
                }
            }
            (None, "constructor") => {
                let a = it.arguments.first().and_then(|a| a.as_expression());
                if a.and_then(|a| fold(a, self.names, 0))
                    .is_some_and(|s| s.contains("debugger"))
                {
                    self.hit(Behaviour::DebuggerLoop, span)
                }
            }
            _ => {}
        }
        if name == "Function" || name == "constructor" || name == "eval" {
            let a = it.arguments.first().and_then(|a| a.as_expression());
            if a.and_then(|a| fold(a, self.names, 0))
                .is_some_and(|s| s.contains("debugger"))
                && ctx & LOOP != 0
            {
                self.hit(Behaviour::DebuggerLoop, span)
            }
        }
    }

    fn finish(mut self) -> Vec<Hit> {
        if self.dialogs_at_load.0 >= 3 {
            let line = self.dialogs_at_load.1;
            self.hits.push(Hit {
                behaviour: Behaviour::DialogLoop,
                line,
            });
        }
        if self.opens_at_load.0 >= 3 {
            let line = self.opens_at_load.1;
            self.hits.push(Hit {
                behaviour: Behaviour::WindowOpenLoop,
                line,
            });
        }
        let kib = self.source.len() / 1024 + 1;
        if self.obfuscation >= 3 && self.obfuscation * 2 >= kib {
            self.hits.push(Hit {
                behaviour: Behaviour::Obfuscation,
                line: 1,
            });
        }
        if self.query_param && self.dom_write {
            self.hits.push(Hit {
                behaviour: Behaviour::NumberFromQuery,
                line: 1,
            });
        }
        if self.loop_set && self.play > 0 {
            self.hits.push(Hit {
                behaviour: Behaviour::AudioLoop,
                line: 1,
            });
        }
        self.hits.sort_by_key(|h| (h.line, h.behaviour));
        self.hits.dedup_by_key(|h| (h.line, h.behaviour));
        self.hits
    }
}

/// Behaviours of code held in a string (`setInterval("alert('…')", 100)`).
fn analyze_nested(code: &str, ctx: Ctx) -> Vec<Behaviour> {
    let event = if ctx & LOOP != 0 { "popstate" } else { "load" };
    analyze(
        code,
        Origin::Attribute {
            event,
            page_wide: true,
        },
    )
    .hits
    .into_iter()
    .map(|h| h.behaviour)
    .collect()
}

/// Whether a query parameter's name says it carries a phone number.
fn phone_param(p: &str) -> bool {
    let p = p.to_ascii_lowercase();
    matches!(
        p.as_str(),
        "ph" | "phone"
            | "tel"
            | "tfn"
            | "num"
            | "number"
            | "n"
            | "p"
            | "call"
            | "callnumber"
            | "telefono"
            | "numero"
            | "nummer"
            | "telefon"
            | "phonenumber"
            | "phone_number"
            | "pn"
            | "no"
    ) || p.contains("phone")
}

/// Whether CSS text sets `cursor: none`.
pub fn css_hides_cursor(css: &str) -> bool {
    let compact: String = css
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    compact.contains("cursor:none")
}

/// Whether a listener cancels what it handles: `return false`, `return "…"`,
/// `preventDefault()`, or setting `returnValue`.
fn handler_cancels(handler: &Expression) -> bool {
    struct Cancels(bool);
    impl<'a> Visit<'a> for Cancels {
        fn visit_return_statement(&mut self, it: &ReturnStatement<'a>) {
            match it.argument.as_ref().map(|a| a.without_parentheses()) {
                Some(Expression::BooleanLiteral(b)) if !b.value => self.0 = true,
                Some(Expression::StringLiteral(_) | Expression::TemplateLiteral(_)) => {
                    self.0 = true
                }
                Some(Expression::Identifier(_) | Expression::BinaryExpression(_)) => self.0 = true,
                _ => {}
            }
            walk::walk_return_statement(self, it);
        }
        fn visit_call_expression(&mut self, it: &CallExpression<'a>) {
            if let Expression::StaticMemberExpression(m) = it.callee.without_parentheses() {
                if m.property.name.as_str() == "preventDefault" {
                    self.0 = true;
                }
            }
            walk::walk_call_expression(self, it);
        }
        fn visit_assignment_expression(&mut self, it: &AssignmentExpression<'a>) {
            if let AssignmentTarget::StaticMemberExpression(m) = &it.left {
                if m.property.name.as_str() == "returnValue" {
                    self.0 = true;
                }
            }
            walk::walk_assignment_expression(self, it);
        }
    }
    let mut c = Cancels(false);
    match handler.without_parentheses() {
        Expression::ArrowFunctionExpression(f) => {
            // `() => false`, `() => "stay"`
            if let Some(e) = f.body.as_expression() {
                match e.without_parentheses() {
                    Expression::BooleanLiteral(b) if !b.value => return true,
                    Expression::StringLiteral(_) | Expression::TemplateLiteral(_) => return true,
                    _ => {}
                }
            }
            c.visit_arrow_function_expression(f);
        }
        Expression::FunctionExpression(f) => c.visit_function(f, ScopeFlags::Function),
        _ => {}
    }
    c.0
}

/// Key names and codes: Escape and F11 (leaving fullscreen), and developer-tool keys.
fn classify_key(frame: &mut KeyFrame, value: &str) {
    match value.to_ascii_lowercase().as_str() {
        "27" | "122" | "escape" | "esc" | "f11" => frame.escape = true,
        "123" | "f12" | "73" | "74" | "85" | "67" | "i" | "j" | "u" | "c" => frame.devtools = true,
        "" => {}
        _ => frame.other = true,
    }
}

impl<'a> Visit<'a> for Find<'_, '_> {
    fn visit_call_expression(&mut self, it: &CallExpression<'a>) {
        self.call(it);
        if let Some((ctx, handler)) = registration(it, self.names) {
            self.visit_expression(&it.callee);
            for (i, a) in it.arguments.iter().enumerate() {
                match a.as_expression() {
                    Some(h) if handler.is_some_and(|x| std::ptr::eq(x, h)) && i <= 1 => {
                        // a named listener registered for unload or the menu
                        if let Expression::Identifier(_) = h {
                            if ctx & (MENU | UNLOAD) != 0 {
                                self.hit(
                                    if ctx & MENU != 0 {
                                        Behaviour::ContextMenuBlocked
                                    } else {
                                        Behaviour::BeforeUnloadTrap
                                    },
                                    it.span,
                                );
                            }
                        }
                        self.visit_handler(ctx, h)
                    }
                    _ => self.visit_argument(a),
                }
            }
            return;
        }
        // an immediately invoked function runs where it is
        walk::walk_call_expression(self, it);
    }

    fn visit_assignment_expression(&mut self, it: &AssignmentExpression<'a>) {
        if let Some(ctx) = handler_assignment(it, self.names) {
            self.visit_assignment_target(&it.left);
            if ctx & (MENU | UNLOAD) != 0 {
                // `document.oncontextmenu = () => false`, `onbeforeunload = function () { return "…" }`
                self.check_handler_cancels(ctx, &it.right);
            }
            self.visit_handler(ctx, &it.right);
            return;
        }
        if let Some((object, prop)) = assigned_member(&it.left, self.names) {
            let ctx = self.here();
            match prop.as_str() {
                "cursor" if fold(&it.right, self.names, 0).as_deref() == Some("none") => {
                    self.hit(Behaviour::CursorHidden, it.span)
                }
                "cssText"
                    if fold(&it.right, self.names, 0).is_some_and(|v| css_hides_cursor(&v)) =>
                {
                    self.hit(Behaviour::CursorHidden, it.span)
                }
                "loop" if matches!(it.right.without_parentheses(), Expression::BooleanLiteral(b) if b.value) => {
                    self.loop_set = true
                }
                "download" if ctx & LOOP != 0 => self.hit(Behaviour::DownloadLoop, it.span),
                "innerHTML" | "innerText" | "textContent" | "outerHTML" | "nodeValue" => {
                    self.dom_write = true
                }
                "returnValue" if ctx & UNLOAD != 0 => {
                    self.hit(Behaviour::BeforeUnloadTrap, it.span)
                }
                "returnValue" if ctx & MENU != 0 => {
                    self.hit(Behaviour::ContextMenuBlocked, it.span)
                }
                "returnValue" if ctx & KEY != 0 => {
                    if let Some(k) = self.key_frames.last_mut() {
                        k.cancels = true;
                    }
                }
                "log" | "info" | "warn" | "error" | "debug" | "table" | "clear"
                    if member_name(object, self.names).as_deref() == Some("console") =>
                {
                    self.hit(Behaviour::ConsoleTampering, it.span)
                }
                "href" | "search" | "hash"
                    if ctx & LOOP != 0
                        && member_name(object, self.names).as_deref() == Some("location") =>
                {
                    // location changes in a loop: as many history entries as pushState
                    self.hit(Behaviour::HistoryFlood, it.span)
                }
                _ => {}
            }
        } else if let AssignmentTarget::AssignmentTargetIdentifier(id) = &it.left {
            if id.name.as_str() == "console" {
                self.hit(Behaviour::ConsoleTampering, it.span)
            }
        }
        walk::walk_assignment_expression(self, it);
    }

    fn visit_new_expression(&mut self, it: &NewExpression<'a>) {
        if let Expression::Identifier(id) = it.callee.without_parentheses() {
            match id.name.as_str() {
                "Function" => self.obfuscation += 1,
                "URLSearchParams" => {}
                _ => {}
            }
        }
        walk::walk_new_expression(self, it);
    }

    fn visit_return_statement(&mut self, it: &ReturnStatement<'a>) {
        if let Some(Expression::BooleanLiteral(b)) =
            it.argument.as_ref().map(|a| a.without_parentheses())
        {
            if !b.value {
                if let Some(k) = self.key_frames.last_mut() {
                    k.cancels = true;
                }
            }
        }
        walk::walk_return_statement(self, it);
    }

    fn visit_binary_expression(&mut self, it: &BinaryExpression<'a>) {
        if it.operator.is_equality() && !self.key_frames.is_empty() {
            for side in [&it.left, &it.right] {
                if let Some(v) = literal(side) {
                    if let Some(k) = self.key_frames.last_mut() {
                        classify_key(k, &v);
                    }
                }
            }
        }
        walk::walk_binary_expression(self, it);
    }

    fn visit_switch_case(&mut self, it: &SwitchCase<'a>) {
        if let Some(v) = it.test.as_ref().and_then(literal) {
            if let Some(k) = self.key_frames.last_mut() {
                classify_key(k, &v);
            }
        }
        walk::walk_switch_case(self, it);
    }

    fn visit_array_expression(&mut self, it: &ArrayExpression<'a>) {
        if !self.key_frames.is_empty() {
            for el in &it.elements {
                if let Some(v) = el.as_expression().and_then(literal) {
                    if let Some(k) = self.key_frames.last_mut() {
                        classify_key(k, &v);
                    }
                }
            }
        }
        walk::walk_array_expression(self, it);
    }

    fn visit_debugger_statement(&mut self, it: &DebuggerStatement) {
        if self.here() & LOOP != 0 {
            self.hit(Behaviour::DebuggerLoop, it.span);
        }
    }

    fn visit_static_member_expression(&mut self, it: &StaticMemberExpression<'a>) {
        let read = it.property.name.as_str();
        let object = || member_name(&it.object, self.names);
        if (matches!(read, "search" | "href") && object().as_deref() == Some("location"))
            || (read == "URL" && object().as_deref() == Some("document"))
        {
            // the query string read (whole, or within the URL, as a regex over
            // `location.href` does); a phone-like parameter name makes it count
            if self.source.len() < MAX_SCRIPT {
                self.query_read_hint();
            }
        }
        walk::walk_static_member_expression(self, it);
    }

    fn visit_for_statement(&mut self, it: &ForStatement<'a>) {
        self.in_loop(|me| walk::walk_for_statement(me, it));
    }
    fn visit_while_statement(&mut self, it: &WhileStatement<'a>) {
        self.in_loop(|me| walk::walk_while_statement(me, it));
    }
    fn visit_do_while_statement(&mut self, it: &DoWhileStatement<'a>) {
        self.in_loop(|me| walk::walk_do_while_statement(me, it));
    }
    fn visit_for_in_statement(&mut self, it: &ForInStatement<'a>) {
        self.in_loop(|me| walk::walk_for_in_statement(me, it));
    }
    fn visit_for_of_statement(&mut self, it: &ForOfStatement<'a>) {
        self.in_loop(|me| walk::walk_for_of_statement(me, it));
    }

    fn visit_function(&mut self, it: &Function<'a>, flags: ScopeFlags) {
        let name = it.id.as_ref().map(|id| id.name.as_str().to_string());
        let named_ctx = name
            .as_ref()
            .and_then(|n| self.names.fn_ctx.get(n))
            .copied()
            .unwrap_or(0);
        let keyed = named_ctx & KEY != 0;
        if keyed {
            self.key_frames.push(KeyFrame {
                line: self.line(it.span),
                page_wide: named_ctx & PAGE_GESTURE != 0,
                ..KeyFrame::default()
            });
        }
        self.fn_names.push(name);
        walk::walk_function(self, it, flags);
        self.fn_names.pop();
        if keyed {
            if let Some(frame) = self.key_frames.pop() {
                self.close_key_frame(frame);
            }
        }
    }

    fn visit_variable_declarator(&mut self, it: &VariableDeclarator<'a>) {
        if let (BindingPattern::BindingIdentifier(id), Some(init)) = (&it.id, &it.init) {
            if let Expression::FunctionExpression(_) | Expression::ArrowFunctionExpression(_) =
                init.without_parentheses()
            {
                self.fn_names.push(Some(id.name.as_str().to_string()));
                walk::walk_variable_declarator(self, it);
                self.fn_names.pop();
                return;
            }
        }
        walk::walk_variable_declarator(self, it);
    }
}

impl Find<'_, '_> {
    fn in_loop(&mut self, f: impl FnOnce(&mut Self)) {
        let c = self.here() | LOOP;
        self.ctx.push(c);
        f(self);
        self.ctx.pop();
    }

    fn query_read_hint(&mut self) {
        if let Some(named) = self.phone_param_named {
            self.query_param |= named;
            return;
        }
        self.phone_param_named = Some(false);
        // `location.search` alone is common (analytics); only a phone-like parameter name,
        // seen by `get`/`has` or as a string in the same script, makes it count.
        if PHONE_PARAMS_IN_TEXT.iter().any(|p| {
            self.source.contains(&format!("{p}="))
                || self.source.contains(&format!("'{p}'"))
                || self.source.contains(&format!("\"{p}\""))
        }) {
            self.query_param = true;
            self.phone_param_named = Some(true);
        }
    }
}

const PHONE_PARAMS_IN_TEXT: &[&str] = &[
    "phone", "ph", "tel", "tfn", "number", "num", "telefono", "numero", "nummer",
];

/// Counts an occurrence and keeps the first one's line.
fn count_first(slot: &mut (usize, u32), line: u32) {
    if slot.0 == 0 {
        slot.1 = line;
    }
    slot.0 += 1;
}

/// A literal's value as text (strings and numbers).
fn literal(e: &Expression) -> Option<String> {
    match e.without_parentheses() {
        Expression::StringLiteral(s) => Some(s.value.as_str().to_string()),
        Expression::NumericLiteral(n) if n.value.fract() == 0.0 => {
            Some(format!("{}", n.value as i64))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn behaviours(src: &str) -> Vec<Behaviour> {
        let mut b: Vec<_> = analyze(src, Origin::Script)
            .hits
            .into_iter()
            .map(|h| h.behaviour)
            .collect();
        b.sort();
        b.dedup();
        b
    }

    #[test]
    fn reads_behaviours_in_context() {
        use Behaviour::*;
        let cases: &[(&str, &[Behaviour])] = &[
            ("document.documentElement.requestFullscreen();", &[FullscreenAuto]),
            (
                "document.getElementById('go').addEventListener('click', () => canvas.requestFullscreen());",
                &[FullscreenOnControl],
            ),
            (
                "document.addEventListener('click', function () { document.body['request' + 'Full' + 'screen'](); });",
                &[FullscreenAuto],
            ),
            ("var k = 'req'+'uestFullscreen'; function f(){ el[k](); } document.onclick = f;", &[FullscreenAuto]),
            ("while (true) { alert('Virus!'); }", &[DialogLoop]),
            ("function a(){ confirm('x'); setTimeout(a, 10); } a();", &[DialogLoop]),
            ("setInterval(function(){ history.pushState({}, '', location.href); }, 10);", &[HistoryFlood]),
            ("window.onbeforeunload = function () { return 'Stay'; };", &[BeforeUnloadTrap]),
            ("document.oncontextmenu = () => false;", &[ContextMenuBlocked]),
            (
                "document.addEventListener('keydown', function (e) { if (e.keyCode == 27 || e.key === 'F11') { e.preventDefault(); } });",
                &[EscapeBlocked],
            ),
            (
                "document.onkeydown = function (e) { if (e.keyCode == 123) return false; };",
                &[DevtoolsKeysBlocked],
            ),
            ("setInterval(function(){ debugger; }, 100);", &[DebuggerLoop]),
            ("console.log = function(){};", &[ConsoleTampering]),
            ("navigator.keyboard.lock();", &[KeyboardLockAuto]),
            (
                "document.addEventListener('fullscreenchange', function () { if (document.fullscreenElement) navigator.keyboard.lock(); });",
                &[KeyboardLockOnControl],
            ),
            (
                "document.addEventListener('fullscreenchange', function () { if (!document.fullscreenElement) document.body.requestFullscreen(); });",
                &[FullscreenAuto],
            ),
            (
                "canvas.addEventListener('keydown', function (e) { e.preventDefault(); send(e.keyCode); });",
                &[],
            ),
            ("btn.onclick = () => navigator.keyboard.lock(['Escape']);", &[KeyboardLockOnControl]),
            ("document[String.fromCharCode(98,111,100,121)].style.cursor = 'none';", &[CursorHidden]),
            ("var a = new Audio('a.mp3'); a.loop = true; a.play();", &[AudioLoop]),
            (
                "var n = new URLSearchParams(location.search).get('phone'); document.getElementById('n').textContent = n;",
                &[NumberFromQuery],
            ),
            ("for (var i = 0; i < 50; i++) window.open('https://x.test/');", &[WindowOpenLoop]),
        ];
        for (src, want) in cases {
            assert_eq!(behaviours(src), *want, "{src}");
        }
    }

    #[test]
    fn bad_input_never_panics() {
        for src in [
            "",
            "function (",
            "}}}}",
            "`${",
            "a = '\\u{110000}'",
            &"(".repeat(100_000),
            &"[".repeat(5_000),
            &format!("{}1{}", "(".repeat(399), ")".repeat(399)),
            &format!("{}x{}", "{a:[".repeat(199), "]}".repeat(199)),
            &"x=1;".repeat(400_000),
            "\u{feff}<!-- -->",
        ] {
            let _ = analyze(src, Origin::Script);
        }
    }
}
