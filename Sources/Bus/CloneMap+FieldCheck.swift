extension CloneMap {
    /// Labels of the stored properties whose values differ between an object and its copy,
    /// leaving out references (they point into the copy by design; an optional or an array of
    /// references prints only the class's name, so it compares equal) and unsafe pointers (each
    /// object's own storage, whose contents its clone copies field by field). A `copyState` that misses
    /// a field added later shows up here: the fork tests run it on every copied part.
    public static func valueFieldsThatDiffer(_ original: AnyObject, _ copy: AnyObject) -> [String] {
        let left = Mirror(reflecting: original).children, right = Mirror(reflecting: copy).children
        return zip(left, right).compactMap { l, r in
            guard let label = l.label, Mirror(reflecting: l.value).displayStyle != .class,
                  !String(describing: type(of: l.value)).hasPrefix("Unsafe") else { return nil }
            return String(reflecting: l.value) == String(reflecting: r.value) ? nil : label
        }
    }
}
