//! The long-running daemon: schedule, control socket, signals, systemd notify, health pings.
