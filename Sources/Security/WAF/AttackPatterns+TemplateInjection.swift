extension AttackPatterns {
    static let templateMarkers = MarkerSet(["__class__", "__mro__", "__subclasses__", "__globals__", "__builtins__", "__import__", "__init__.__",
                                     "constructor.constructor", "freemarker.template", "t(java.lang.runtime)", "java.lang.runtime", "getruntime()",
                                     "processbuilder", "#set(", "$class.inspect", "{{config", "{{self", "{{request", "{{lipsum", "{{cycler", "{{joiner",
                                     "{{namespace", "{{range", "{{''", "{{\"\"", "{% import", "{%import", "{php}", "{system(", "<#assign", "#{t(", "${t(", "*{t(",
                                     "@(1+", "{{= ", "<%= 7", "${7*", "{7*7}", "[[${", "${\"freemarker",
                                     "{{=", "@(7", "{{settings", "{{_self", "|filter(", "{{app.", "${@", "{{#with", "smarty_internal", "{{dump(",
                                     "|system", "popen(", "child_process", "mainmodule", ".getclass()", ".forname(", "{{[", "${t(", "#{t(",
                                     "{{constructor", "{{@", "{$smarty", "{{exec", "{{.__", "${class", "${product.getclass", "{{~", "${{<%", "#{%x(",
                                     "{{range.constructor", "{{'a'.constructor", "${request.", "${session.", "${application.", "{{request.", "{{cookies", "{{ config",
                                     "{% debug", "{%debug", "${self.", "${__", "{{3*", "*'3'", "[].class", "''.class", ".class.base", "{{ request", "{{ config", "{{ self", "{{ [", "{*", "#{'", "${\"", "{{\"", "{{'"])

    // MARK: Server-side template injection

    static func templateInjection(_ s: [UInt8]) -> String? {
        if Self.templateMarkers.contains(in: s) { return "template expression" }
        // {{ 7*7 }}, ${ 3*3 }, <%= 7*7 %>, #{ 7*7 }: arithmetic in a template delimiter
        for open: StaticString in ["{{", "${", "<%=", "#{", "*{", "@{"] {
            var from = 0
            while let at = s.firstIndex(of: open, from: from) {
                from = at + 1
                var j = at + open.utf8CodeUnitCount
                while j < s.count && s[j] == 0x20 { j += 1 }
                var digits = 0
                while j < s.count && s[j] >= 0x30 && s[j] <= 0x39 { j += 1; digits += 1 }
                while j < s.count && s[j] == 0x20 { j += 1 }
                if digits > 0 && j < s.count && (s[j] == 0x2A || s[j] == 0x2B) {
                    j += 1
                    while j < s.count && s[j] == 0x20 { j += 1 }
                    if j < s.count && s[j] >= 0x30 && s[j] <= 0x39 { return "template arithmetic" }
                }
            }
        }
        return nil
    }
}
