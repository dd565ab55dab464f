pub fn main(args: Vec<std::ffi::OsString>) -> i32 {
    let _ = args;
    eprintln!("pyinit: error: not built yet");
    1
}
