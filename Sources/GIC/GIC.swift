// The GIC module. See the files beside this one.
