namespace Berth.BlackBox.Support;

/// <summary>A fact that needs the real flannel CNI plugin; skipped, saying where it was looked for, when it is absent.</summary>
public sealed class FlannelFactAttribute : FactAttribute
{
    public FlannelFactAttribute()
    {
        if (!File.Exists(FlannelNode.Plugin)) Skip = $"the flannel CNI plugin is not at {FlannelNode.Plugin} (CI puts it there; its README says how it was built)";
    }
}
