//! Tells the compiler whether the web UI was built (`web/dist/index.html`) and makes cargo
//! rebuild the api when it changes: in release builds `rust-embed` embeds `web/dist` at
//! compile time (in debug builds it reads the files from disk at run time).

use std::path::Path;

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let web = Path::new(&manifest).join("../../web");
    let dist = web.join("dist");
    let built = dist.join("index.html").is_file();
    println!("cargo:rustc-env=API_WEB_UI_BUILT={built}");
    // A path that does not exist would make cargo rerun this script on every build, so watch
    // the nearest one that does: `web/dist` once built, else `web` (where `dist` will appear).
    if dist.is_dir() {
        println!("cargo:rerun-if-changed={}", dist.display());
    } else if web.is_dir() {
        println!("cargo:rerun-if-changed={}", web.display());
    } else {
        println!("cargo:rerun-if-changed=build.rs");
    }
}
