fn main() -> std::process::ExitCode {
    helpscout_etl::cli::main()
}
