// The PCI module. See the files beside this one.
