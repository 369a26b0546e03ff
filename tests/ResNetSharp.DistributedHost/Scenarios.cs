using System;
using System.Collections.Generic;
using ResNetSharp.Distributed;

namespace ResNetSharp.DistributedHost;

/// <summary>The training scenarios.</summary>
internal static class Scenarios
{
    public static Dictionary<string, object> Run(string name, Communicator comm, string[] args) =>
        throw new ArgumentException($"Unknown scenario '{name}' (args: {string.Join(' ', args)}, rank {comm.Rank}).");
}
