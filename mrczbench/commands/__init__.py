"""The commands of the `mrczbench` program, one module per command (or group of
subcommands): each defines `add_commands(subparsers)`, which adds its sub-parsers and sets
`func(args) -> int`; mrczbench.cli lists the modules. A command parses options and prints;
what it does lives in the package below it (formats, movies, bench, analysis, convert, fuzz).
Heavy imports (pandas, matplotlib) stay inside the command functions, so that
`mrczbench --help` stays fast."""
