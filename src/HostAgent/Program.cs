using Berth.HostAgent;

// The thin entry point: the command line decides which command runs; each command is a few lines in Cli.
return await Cli.RunAsync(args).ConfigureAwait(false);
