//! A minimal HTTP/1.1 keep-alive client over a Unix socket or TCP, blocking, so that the
//! figures are the agent's and not a client library's: one request line out, one response
//! (Content-Length or chunked) in, the connection kept for the next.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// One kept-alive connection.
pub struct Conn {
    s: Box<dyn Stream>,
    buf: Vec<u8>,
}

impl Conn {
    /// A connection to the agent's Unix socket.
    pub fn unix(path: &Path) -> Result<Self, String> {
        let s = UnixStream::connect(path).map_err(|e| format!("{}: {e}", path.display()))?;
        s.set_read_timeout(Some(Duration::from_secs(30))).ok();
        Ok(Self::over(Box::new(s)))
    }

    /// A TCP connection to `host:port`.
    pub fn tcp(host: &str) -> Result<Self, String> {
        let s = std::net::TcpStream::connect(host).map_err(|e| format!("{host}: {e}"))?;
        s.set_nodelay(true).ok();
        s.set_read_timeout(Some(Duration::from_secs(30))).ok();
        Ok(Self::over(Box::new(s)))
    }

    fn over(s: Box<dyn Stream>) -> Self {
        Self {
            s,
            buf: Vec::with_capacity(16 * 1024),
        }
    }

    /// `GET target` with `headers`; the status and the body.
    pub fn get(
        &mut self,
        target: &str,
        headers: &[(&str, &str)],
    ) -> Result<(u16, Vec<u8>), String> {
        let mut req = format!("GET {target} HTTP/1.1\r\nHost: bench\r\n");
        for (n, v) in headers {
            req += &format!("{n}: {v}\r\n");
        }
        req += "\r\n";
        self.s
            .write_all(req.as_bytes())
            .map_err(|e| format!("send: {e}"))?;
        let end = self.fill_until(|b| find(b, b"\r\n\r\n"))?;
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end + 4);
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("not an HTTP response: {head:?}"))?;
        let header = |name: &str| {
            head.lines().skip(1).find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_owned())
            })
        };
        let body = if let Some(len) = header("content-length") {
            let len: usize = len.parse().map_err(|_| format!("bad length {len:?}"))?;
            self.take(len)?
        } else if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            self.chunked()?
        } else {
            Vec::new()
        };
        Ok((status, body))
    }

    fn chunked(&mut self) -> Result<Vec<u8>, String> {
        let mut body = Vec::new();
        loop {
            let eol = self.fill_until(|b| find(b, b"\r\n"))?;
            let line = String::from_utf8_lossy(&self.buf[..eol]).into_owned();
            self.buf.drain(..eol + 2);
            let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| format!("bad chunk size {line:?}"))?;
            if size == 0 {
                // Trailers, then the empty line.
                loop {
                    let eol = self.fill_until(|b| find(b, b"\r\n"))?;
                    self.buf.drain(..eol + 2);
                    if eol == 0 {
                        return Ok(body);
                    }
                }
            }
            body.extend(self.take(size)?);
            self.take(2)?;
        }
    }

    /// The next `n` bytes.
    fn take(&mut self, n: usize) -> Result<Vec<u8>, String> {
        self.fill_until(|b| (b.len() >= n).then_some(n))?;
        Ok(self.buf.drain(..n).collect())
    }

    /// Reads until `found` finds what it looks for in the buffer; its answer.
    fn fill_until(&mut self, found: impl Fn(&[u8]) -> Option<usize>) -> Result<usize, String> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(i) = found(&self.buf) {
                return Ok(i);
            }
            let n = self.s.read(&mut chunk).map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("the connection closed mid-response".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    struct Fake(Cursor<Vec<u8>>, Vec<u8>);
    impl Read for Fake {
        fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
            let n = b.len().min(7);
            self.0.read(&mut b[..n])
        }
    }
    impl Write for Fake {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.1.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn reads_kept_alive_responses_by_length_and_by_chunks() {
        let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello\
HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=1\r\nde\r\n0\r\n\r\n\
HTTP/1.1 204 No Content\r\n\r\n";
        let mut c = Conn::over(Box::new(Fake(Cursor::new(wire.to_vec()), Vec::new())));
        assert_eq!(c.get("/a", &[]).unwrap(), (200, b"hello".to_vec()));
        assert_eq!(
            c.get("/b", &[("x", "y")]).unwrap(),
            (404, b"abcde".to_vec())
        );
        assert_eq!(c.get("/c", &[]).unwrap(), (204, Vec::new()));
        assert!(c.get("/d", &[]).is_err(), "closed");
    }
}
