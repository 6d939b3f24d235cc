// The Firmware module. See the files beside this one.
