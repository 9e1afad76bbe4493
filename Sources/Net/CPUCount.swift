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
        if let text = readSmallFile("/sys/fs/cgroup/cpu.max") {
            return parseCgroupV2(text)
        }
        // cgroup v1.
        if let quotaText = readSmallFile("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
           let periodText = readSmallFile("/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
           let quota = Double(quotaText.trimmingSpaces), let period = Double(periodText.trimmingSpaces),
           quota > 0, period > 0 {
            return quota / period
        }
        return nil
    }

    static func parseCgroupV2(_ text: String) -> Double? {
        let parts = text.trimmingSpaces.split(separator: " ")
        guard parts.count == 2, parts[0] != "max", let quota = Double(parts[0]), let period = Double(parts[1]),
              quota > 0, period > 0 else { return nil }
        return quota / period
    }

    static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = read(fd, &buffer, buffer.count)
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n], as: UTF8.self)
    }
}

extension String {
    var trimmingSpaces: String {
        String(self.drop(while: { $0 == " " || $0 == "\n" }).reversed().drop(while: { $0 == " " || $0 == "\n" }).reversed())
    }
}
