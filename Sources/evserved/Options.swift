import ArgumentParser
import EvservedKit
import Logging

// The daemon's option types, readable from the command line.
extension BuiltinService: ExpressibleByArgument {}
extension ModeName: ExpressibleByArgument {}
extension Logger.Level: @retroactive ExpressibleByArgument {}
