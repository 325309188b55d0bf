//! The shared behaviour suite, broker checks included, against the example Python plugin
//! `examples/plugins/python-dir/nsauth-store-pydir`; every handle is a new plugin process.

mod support;

nsauth_conformance::store_suite!(support::PyDirFixture::one_at_a_time(&[]).await);
