//! A small blocking HTTP/1.1 client on std's `TcpStream`, for tests that speak to a real
//! server: one request per connection (`connection: close`), bodies sent with a
//! `content-length` or chunked, answers read by `content-length`, chunked, or to the end.
//!
//! The serving tests need only this much, and a full client crate (reqwest) costs the test
//! build a second copy of hyper and tokio with other features.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long a test waits on a socket before the request fails.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// A parsed answer.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code, e.g. 200.
    pub status: u16,
    /// The header fields in the order received, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body, with any chunked transfer coding removed.
    pub body: Vec<u8>,
}

impl Response {
    /// The value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy for bytes that are not UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// How a request's body is framed.
#[derive(Debug, Clone, Copy)]
pub enum Framing {
    /// `content-length: N` and the bytes.
    Length,
    /// `transfer-encoding: chunked`, in chunks of at most this many bytes.
    Chunked(usize),
}

/// Connects to `addr` with [`TIMEOUT`] on reads and writes.
pub fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    Ok(stream)
}

/// Writes the request line and headers (`host` and `connection: close` added); with
/// `Framing::Length` the `content-length` of `body_len` too.
pub fn write_head(
    stream: &mut impl Write,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    framing: Framing,
    body_len: usize,
) -> io::Result<()> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    match framing {
        Framing::Length => head.push_str(&format!("content-length: {body_len}\r\n")),
        Framing::Chunked(_) => head.push_str("transfer-encoding: chunked\r\n"),
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())
}

/// Sends one request and reads its answer.
///
/// A server may answer and close before it has read the whole body (413 on a streamed body):
/// a failed write is then ignored and the answer read all the same.
pub fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    framing: Framing,
) -> io::Result<Response> {
    let mut stream = connect(addr)?;
    write_head(&mut stream, method, path, headers, framing, body.len())?;
    let written = match framing {
        Framing::Length => stream.write_all(body),
        Framing::Chunked(size) => write_chunked(&mut stream, body, size),
    };
    match read_response(&mut stream) {
        Ok(r) => Ok(r),
        Err(e) => Err(written.err().unwrap_or(e)),
    }
}

fn write_chunked(stream: &mut impl Write, body: &[u8], size: usize) -> io::Result<()> {
    for chunk in body.chunks(size.max(1)) {
        write!(stream, "{:x}\r\n", chunk.len())?;
        stream.write_all(chunk)?;
        stream.write_all(b"\r\n")?;
        stream.flush()?;
    }
    stream.write_all(b"0\r\n\r\n")
}

/// A request sent up to half of its body: the server has accepted it (and holds whatever
/// it holds per request) until [`Partial::finish`] sends the rest.
#[derive(Debug)]
pub struct Partial {
    stream: TcpStream,
    rest: Vec<u8>,
}

impl Partial {
    /// Sends the head (with `content-length`) and the first half of `body`.
    pub fn start(
        addr: SocketAddr,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Partial> {
        let mut stream = connect(addr)?;
        write_head(
            &mut stream,
            method,
            path,
            headers,
            Framing::Length,
            body.len(),
        )?;
        let (head, rest) = body.split_at(body.len() / 2);
        stream.write_all(head)?;
        stream.flush()?;
        Ok(Partial {
            stream,
            rest: rest.to_vec(),
        })
    }

    /// [`Partial::start`] of `POST path` with a JSON body (`content-type: application/json`).
    pub fn post_json(addr: SocketAddr, path: &str, body: &[u8]) -> io::Result<Partial> {
        let json = [("content-type", "application/json")];
        Partial::start(addr, "POST", path, &json, body)
    }

    /// Sends the rest of the body and reads the answer.
    pub fn finish(mut self) -> io::Result<Response> {
        self.stream.write_all(&self.rest)?;
        read_response(&mut self.stream)
    }
}

/// `GET path`.
pub fn get(addr: SocketAddr, path: &str) -> io::Result<Response> {
    send(addr, "GET", path, &[], &[], Framing::Length)
}

/// `POST path` with a JSON body (`content-type: application/json`).
pub fn post_json(addr: SocketAddr, path: &str, body: &[u8]) -> io::Result<Response> {
    send(
        addr,
        "POST",
        path,
        &[("content-type", "application/json")],
        body,
        Framing::Length,
    )
}

/// Reads one answer: the status line, the headers, and the body by `content-length`, by
/// chunks, or to the end of the stream.
pub fn read_response(stream: &mut impl Read) -> io::Result<Response> {
    let mut reader = BufReader::new(stream);
    let status_line = read_line(&mut reader)?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(format!("a status line, got {status_line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(&mut reader)?;
        if line.is_empty() {
            break;
        }
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| invalid(format!("a header line, got {line:?}")))?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let mut response = Response {
        status,
        headers,
        body: Vec::new(),
    };
    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    if chunked {
        response.body = read_chunks(&mut reader)?;
    } else if let Some(len) = response.header("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| invalid(format!("a content-length, got {len:?}")))?;
        response.body = vec![0; len];
        reader.read_exact(&mut response.body)?;
    } else {
        reader.read_to_end(&mut response.body)?;
    }
    Ok(response)
}

fn read_chunks(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = read_line(reader)?;
        let size = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| invalid(format!("a chunk size, got {line:?}")))?;
        if size == 0 {
            // Trailers, then the blank line.
            while !read_line(reader)?.is_empty() {}
            return Ok(body);
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        read_line(reader)?;
    }
}

/// One line without its CRLF; the stream's end before a full line is an error.
fn read_line(reader: &mut impl BufRead) -> io::Result<String> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the connection closed before the answer was complete",
        ));
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("expected {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_length_chunked_and_to_the_end() {
        let r = read_response(
            &mut &b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nx-a: b\r\n\r\nabcdef"[..],
        )
        .unwrap();
        assert_eq!(
            (r.status, r.text().as_str(), r.header("X-A")),
            (200, "abc", Some("b"))
        );
        let r = read_response(
            &mut &b"HTTP/1.1 413 Payload Too Large\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n"[..],
        )
        .unwrap();
        assert_eq!((r.status, r.text().as_str()), (413, "abcde"));
        let r = read_response(&mut &b"HTTP/1.0 404 Not Found\r\n\r\nrest"[..]).unwrap();
        assert_eq!((r.status, r.text().as_str()), (404, "rest"));
    }

    #[test]
    fn truncated_or_garbled_answers_are_errors() {
        for bad in [
            &b""[..],
            b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nabc",
            b"HTTP/1.1 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
        ] {
            assert!(read_response(&mut &bad[..]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn writes_a_chunked_body() {
        let mut out = Vec::new();
        write_head(
            &mut out,
            "POST",
            "/p",
            &[("a", "b")],
            Framing::Chunked(2),
            5,
        )
        .unwrap();
        write_chunked(&mut out, b"hello", 2).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("POST /p HTTP/1.1\r\n"));
        assert!(text.contains("a: b\r\ntransfer-encoding: chunked\r\n\r\n"));
        assert!(text.ends_with("2\r\nhe\r\n2\r\nll\r\n1\r\no\r\n0\r\n\r\n"));
    }
}
