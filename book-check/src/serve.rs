//! A tiny static file server for the built book, on a free port of 127.0.0.1.
//!
//! The browser loads the book over HTTP rather than `file://` because that is how readers see it:
//! `fetch()` (mdBook's search index), same-origin rules and absolute links (`/x.html`, the 404
//! page's `<base href="/">`) only behave as deployed over HTTP. It answers `GET` and `HEAD`, one
//! request per connection, each connection on its own thread: Chromium opens several at once and
//! may hold a preconnected socket idle, which would stall a one-at-a-time loop.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};

/// Starts serving `root` in background threads, which live until the process exits.
/// Returns the origin, e.g. `http://127.0.0.1:41234`.
///
/// # Errors
/// If no local port can be bound.
pub fn start(root: PathBuf) -> Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a local port for the book")?;
    let origin = format!("http://{}", listener.local_addr()?);
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let root = root.clone();
            thread::spawn(move || {
                // A client that hangs up early is not our failure; the browser reports what it missed.
                let _ = handle(&root, stream);
            });
        }
    });
    Ok(origin)
}

fn handle(root: &Path, mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk)?;
        if n == 0 || head.len() > 64 * 1024 {
            return Ok(());
        }
        head.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let mut parts = head.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    if method != "GET" && method != "HEAD" {
        return respond(
            &mut stream,
            "405 Method Not Allowed",
            "text/plain",
            b"",
            true,
        );
    }
    match resolve(root, target).and_then(|p| std::fs::read(&p).ok().map(|body| (p, body))) {
        Some((path, body)) => respond(
            &mut stream,
            "200 OK",
            content_type(&path),
            &body,
            method == "GET",
        ),
        None => respond(
            &mut stream,
            "404 Not Found",
            "text/plain",
            b"not found",
            method == "GET",
        ),
    }
}

fn respond(
    stream: &mut TcpStream,
    status: &str,
    ty: &str,
    body: &[u8],
    send_body: bool,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ty}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if send_body {
        stream.write_all(body)?;
    }
    stream.flush()
}

/// The file that the request target names under `root`: query and fragment dropped,
/// percent-escapes decoded, a directory served by its `index.html`. `None` if it does not exist
/// or tries to leave `root` (`..`).
fn resolve(root: &Path, target: &str) -> Option<PathBuf> {
    let path = target.split(['?', '#']).next().unwrap_or("");
    let decoded = percent_decode(path)?;
    let rel = Path::new(decoded.trim_start_matches('/'));
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    let mut full = root.join(rel);
    if full.is_dir() {
        full.push("index.html");
    }
    full.is_file().then_some(full)
}

/// Decodes `%XX` escapes; `None` on a malformed escape or invalid UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "txt" | "md" | "rs" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Requests are mapped to files under the root; `..` and missing files are refused.
    #[test]
    fn resolves_inside_root_only() {
        let root = std::env::temp_dir().join(format!("book-check-serve-{}", std::process::id()));
        std::fs::create_dir_all(root.join("sub dir")).unwrap();
        std::fs::write(root.join("sub dir/index.html"), "x").unwrap();
        std::fs::write(root.join("a.svg"), "x").unwrap();
        assert_eq!(resolve(&root, "/a.svg?v=1#top"), Some(root.join("a.svg")));
        assert_eq!(
            resolve(&root, "/sub%20dir/"),
            Some(root.join("sub dir/index.html"))
        );
        assert_eq!(resolve(&root, "/missing.html"), None);
        assert_eq!(resolve(&root, "/../etc/passwd"), None);
        assert_eq!(resolve(&root, "/sub%20dir/%2e%2e/a.svg"), None);
        assert_eq!(percent_decode("%zz"), None);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
