import DSLCommands
import Foundation

exit(runDSL(Array(CommandLine.arguments.dropFirst())))
