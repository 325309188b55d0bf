//! A TCP proxy the campaign controls, in front of the emulator, OpenBao and moto: it forwards
//! bytes, or holds them (pause: the server seems hung), or refuses connections (closed port),
//! or forwards requests but drops the answers (the server processed it; the client never
//! hears back).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What the proxy does with traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Forward = 0,
    /// Accept, then neither forward nor answer until the mode changes.
    Pause = 1,
    /// Accept and close at once (RST-like for the client), and cut open connections.
    Refuse = 2,
    /// Forward the request, drop the answer and close.
    DropAnswer = 3,
}

impl Mode {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Pause,
            2 => Self::Refuse,
            3 => Self::DropAnswer,
            _ => Self::Forward,
        }
    }
}

/// A running proxy; clones control the same one.
#[derive(Clone, Debug)]
pub struct Proxy {
    pub addr: SocketAddr,
    mode: Arc<AtomicU8>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream` (`HOST:PORT`).
    pub fn start(upstream: String) -> Result<Self, String> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let p = Self {
            addr,
            mode: Arc::new(AtomicU8::new(Mode::Forward as u8)),
            stop: Arc::default(),
        };
        let me = p.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if me.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (me, up) = (me.clone(), upstream.clone());
                std::thread::spawn(move || me.serve(conn, &up));
            }
        });
        Ok(p)
    }

    pub fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    pub fn mode(&self) -> Mode {
        Mode::from_u8(self.mode.load(Ordering::SeqCst))
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }

    /// Waits while paused; `false` when the connection must be cut.
    fn gate(&self) -> bool {
        loop {
            match self.mode() {
                Mode::Pause if !self.stop.load(Ordering::SeqCst) => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Mode::Refuse => return false,
                _ => return !self.stop.load(Ordering::SeqCst),
            }
        }
    }

    fn serve(&self, client: TcpStream, upstream: &str) {
        if !self.gate() {
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
        let Ok(server) = TcpStream::connect(upstream) else {
            let _ = client.shutdown(Shutdown::Both);
            return;
        };
        let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
            return;
        };
        let up = self.clone();
        let t = std::thread::spawn(move || up.pump(client, server, false));
        self.pump(s2, c2, true);
        let _ = t.join();
    }

    /// Copies `from` to `to` while the mode allows; answers (`answer`) are dropped in
    /// [`Mode::DropAnswer`].
    fn pump(&self, mut from: TcpStream, mut to: TcpStream, answer: bool) {
        let _ = from.set_read_timeout(Some(Duration::from_millis(100)));
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if !self.gate() {
                        break;
                    }
                    if answer && self.mode() == Mode::DropAnswer {
                        break;
                    }
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if self.mode() == Mode::Refuse || self.stop.load(Ordering::SeqCst) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        let _ = from.shutdown(Shutdown::Both);
        let _ = to.shutdown(Shutdown::Both);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo_server() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for c in l.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut c = c;
                    let mut b = [0u8; 64];
                    while let Ok(n) = c.read(&mut b) {
                        if n == 0 || c.write_all(&b[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    fn roundtrip(addr: SocketAddr) -> Option<Vec<u8>> {
        let mut c = TcpStream::connect(addr).ok()?;
        c.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
        c.write_all(b"ping").ok()?;
        let mut b = [0u8; 4];
        c.read_exact(&mut b).ok()?;
        Some(b.to_vec())
    }

    #[test]
    fn forwards_then_drops_answers_then_refuses() {
        let p = Proxy::start(echo_server().to_string()).unwrap();
        assert_eq!(roundtrip(p.addr), Some(b"ping".to_vec()));
        p.set(Mode::DropAnswer);
        assert_eq!(roundtrip(p.addr), None, "the answer must be dropped");
        p.set(Mode::Refuse);
        assert_eq!(roundtrip(p.addr), None);
        p.set(Mode::Pause);
        assert_eq!(roundtrip(p.addr), None, "a paused proxy answers nothing");
        p.set(Mode::Forward);
        assert_eq!(roundtrip(p.addr), Some(b"ping".to_vec()));
        p.stop();
    }
}
