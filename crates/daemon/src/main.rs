fn main() {
    println!("gphotos-backup");
}
