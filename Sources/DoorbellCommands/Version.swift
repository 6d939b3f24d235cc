/// The one version string `doorbell --version` prints. Bumped by hand in the commit that
/// changes what the commands print or accept (README, "Version").
public enum DoorbellVersion {
    public static let string = "0.11.0"
}
