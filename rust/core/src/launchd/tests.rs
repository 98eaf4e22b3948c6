//! Unit tests of spec validation and unit generation; launchctl tests live beside the runner.
