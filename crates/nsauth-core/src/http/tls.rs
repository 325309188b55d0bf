//! The TLS every HTTP client of nsauth's libraries uses: rustls on the ring provider, server
//! certificates checked by the platform's verifier (on Linux the system's CA certificates
//! through rustls-native-certs, so `SSL_CERT_FILE` / `SSL_CERT_DIR` still name a custom CA;
//! the OS verifier on macOS and Windows).
//!
//! Why a preconfigured config (issue #13): reqwest 0.13 is built with `rustls-no-provider`, so
//! it brings no crypto of its own (no aws-lc-rs, one TLS stack) and otherwise takes rustls'
//! process-wide default provider — panicking when none is installed. A library must not
//! install that default behind its user's back (their own `install_default` would then fail),
//! so each client built here gets this explicit ring `ClientConfig` through
//! `tls_backend_preconfigured`. The `nsauth` binary also installs ring as the process
//! default, once, in `main`, for any client built without this module.

/// A client config on ring with the platform's verifier. When the system has no CA
/// certificates at all, every TLS handshake fails with a message saying so (plain HTTP still
/// works), rather than the client failing to build.
pub fn client_config() -> rustls::ClientConfig {
    let verifier = nsauth_tls::platform_verifier(Vec::new()).unwrap_or_else(|why| {
        nsauth_tls::verifier_with(nsauth_tls::RefuseEvery(no_roots_message(&why)))
    });
    nsauth_tls::config(verifier)
}

fn no_roots_message(why: &str) -> String {
    format!(
        "cannot check the server's certificate: {why}; install the system's CA certificates \
         (e.g. the ca-certificates package) or set SSL_CERT_FILE"
    )
}

/// `reqwest::Client::builder()` on [`client_config`].
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().tls_backend_preconfigured(client_config())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::crypto::CryptoProvider;

    #[test]
    fn clients_build_on_ring_without_touching_the_process_default() {
        // reqwest would panic building a client if it fell back to the (absent) default.
        assert!(client_builder().build().is_ok());
        assert!(
            CryptoProvider::get_default().is_none(),
            "a library installed a process-wide rustls provider"
        );
    }

    #[test]
    fn no_system_roots_refuses_with_a_message_saying_what_to_do() {
        let m = no_roots_message("No CA certificates were loaded from the system");
        assert!(
            m.contains("SSL_CERT_FILE") && m.contains("ca-certificates"),
            "{m}"
        );
    }
}
