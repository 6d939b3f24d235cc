// The Machine module. See the files beside this one.
