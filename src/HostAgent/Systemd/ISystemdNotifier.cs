namespace Berth.HostAgent.Systemd;

/// <summary>sd_notify(3): tells systemd READY=1, WATCHDOG=1, STATUS=…, STOPPING=1. Does nothing when not under systemd.</summary>
internal interface ISystemdNotifier
{
    void Notify(string state);
}
