// The SMMUv3 module. See the files beside this one.
