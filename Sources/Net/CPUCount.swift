import CLinux
import Glibc

/// How many CPUs this process may really use: the smaller of its affinity mask (taskset, cpuset)
/// and its cgroup CPU quota, rounded up. On ECS Fargate a 1-vCPU task may see 2 CPUs in
/// /proc/cpuinfo while its quota allows one; running two busy loops there would only add context
/// switches.
public enum CPUCount {
    public static func available() -> Int {
        let affinity = Int(clinux_affinity_cpu_count())
        var count = affinity > 0 ? affinity : max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        if let quota = cgroupQuota() {
            count = min(count, max(1, Int(quota.rounded(.up))))
        }
        return count
    }

    /// CPUs granted by the cgroup quota, nil when unlimited or unknown.
    static func cgroupQuota() -> Double? {
        // cgroup v2: "max 100000" or "<quota> <period>".
        if let text = FileBytes.text("/sys/fs/cgroup/cpu.max") {
            return parseCgroupV2(text)
        }
        // cgroup v1.
        if let quotaText = FileBytes.text("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
           let periodText = FileBytes.text("/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
           let quota = Double(quotaText.trimmingWhitespace), let period = Double(periodText.trimmingWhitespace),
           quota > 0, period > 0 {
            return quota / period
        }
        return nil
    }

    static func parseCgroupV2(_ text: String) -> Double? {
        let parts = text.trimmingWhitespace.split(separator: " ")
        guard parts.count == 2, parts[0] != "max", let quota = Double(parts[0]), let period = Double(parts[1]),
              quota > 0, period > 0 else { return nil }
        return quota / period
    }
}

