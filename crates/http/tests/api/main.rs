//! API tests: the real server on a loopback port 0, a fresh SQLite file per test, real HTTP.

mod helpers;
mod mmdb;

mod dni;
mod guard;
mod live;
mod management;
mod reports;
mod routing;
mod webhooks;
