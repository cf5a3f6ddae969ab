// Migrations and static assets are embedded at compile time (rust-embed):
// a file added to either folder must rebuild the binary, which the
// compiler alone does not notice.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=static");
}
