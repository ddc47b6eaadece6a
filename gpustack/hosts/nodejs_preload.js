// gpustack's preload for Node.js Pulumi programs (`node --require`), loaded before the SDK's
// own entry point (@pulumi/pulumi/cmd/run), which then runs the program unchanged. For an
// offline plan it adds one stack transformation (the SDK's documented
// `registerStackTransformation`), registered as the program starts, which:
//
// - records the order in which the program constructs resources, so the plan's order does not
//   depend on which registration RPC happens to arrive first (written as JSON to
//   $GPUSTACK_NODE_ORDER_FILE when the process exits);
// - drops type-only aliases (`{ type: "azure-native:storage/v20190601:StorageAccount" }`, 25-113
//   per azure-native resource) before the SDK turns each into a URN: they only map old type
//   tokens of a resource already in state and mean nothing to a plan. Aliases that name
//   anything else (a name, parent, stack or project) are kept.
//
// - remembers where the program itself called `process.exit` (written as JSON to
//   $GPUSTACK_NODE_EXIT_FILE), so the plan can name that line, as the Python host names a
//   `sys.exit`: the SDK only sees the process end, and its own report names no line.
//
// It must never break a program: if the SDK does not look as expected, it does nothing.
"use strict";

const fs = require("fs");
const path = require("path");

const ALIAS_FIELDS = ["name", "parent", "parentUrn", "noParent", "stack", "project"];

function isTypeOnlyAlias(alias) {
    if (alias === null || typeof alias !== "object" || Array.isArray(alias)) {
        return false;
    }
    const prototype = Object.getPrototypeOf(alias);
    if (prototype !== Object.prototype && prototype !== null) {
        return false; // an Output or another class instance, never a plain Alias literal
    }
    if (alias.type === undefined) {
        return false;
    }
    return ALIAS_FIELDS.every((field) => alias[field] === undefined);
}

function install() {
    const runPath = process.env.GPUSTACK_NODE_RUN_PATH;
    const orderFile = process.env.GPUSTACK_NODE_ORDER_FILE;
    if (!runPath) {
        return;
    }
    const sdkRoot = path.resolve(path.dirname(runPath), "..", "..");
    // The SDK's tracing hooks gRPC and must load before it; load it first, as cmd/run does.
    // SDKs before `cmd/run/instrumentation` existed (3.96 and other 2023 releases) load their
    // `cmd/run/tracing` from run.js after runtime/stack themselves: nothing to load first.
    const instrumentation = path.join(sdkRoot, "cmd", "run", "instrumentation.js");
    if (fs.existsSync(instrumentation)) {
        require(instrumentation);
    }
    const stack = require(path.join(sdkRoot, "runtime", "stack"));
    const original = stack.runInPulumiStack;
    if (typeof original !== "function" || typeof stack.registerStackTransformation !== "function") {
        return;
    }
    const urns = [];
    const recorder = (args) => {
        const index = urns.length;
        urns.push(null);
        const resource = args.resource;
        // The constructor sets `urn` after running transformations: read it once it returned.
        queueMicrotask(() => {
            if (resource && resource.urn && typeof resource.urn.promise === "function") {
                resource.urn.promise().then(
                    (urn) => { urns[index] = urn; },
                    () => undefined,
                );
            }
        });
        const aliases = args.opts && args.opts.aliases;
        if (!Array.isArray(aliases) || aliases.length === 0) {
            return undefined;
        }
        const kept = aliases.filter((alias) => !isTypeOnlyAlias(alias));
        if (kept.length === aliases.length) {
            return undefined;
        }
        return { props: args.props, opts: Object.assign({}, args.opts, { aliases: kept }) };
    };
    stack.runInPulumiStack = (init) =>
        original(() => {
            stack.registerStackTransformation(recorder);
            return init();
        });
    if (orderFile) {
        process.on("exit", () => {
            try {
                fs.writeFileSync(orderFile, JSON.stringify(urns.filter((urn) => urn !== null)));
            } catch (error) {
                // The plan falls back to arrival order.
            }
        });
    }
}

// "    at fn (/abs/file.ts:12:5)" or "    at /abs/file.ts:12:5" (also file:// URLs).
const FRAME = /^\s*at (?:.*?\()?((?:file:\/\/)?\/[^():]+):(\d+):\d+\)?$/;

function programFrame(stack) {
    for (const line of String(stack || "").split("\n").slice(1)) {
        const match = FRAME.exec(line);
        if (match === null) {
            continue;
        }
        const file = match[1].replace(/^file:\/\//, "");
        if (file === __filename || file.split(path.sep).includes("node_modules")) {
            continue;
        }
        return { file, line: Number(match[2]) };
    }
    return null;
}

function rememberExits() {
    const exitFile = process.env.GPUSTACK_NODE_EXIT_FILE;
    if (!exitFile) {
        return;
    }
    const exit = process.exit;
    let recorded = false;
    process.exit = function (code) {
        if (!recorded) {
            recorded = true;
            try {
                const frame = programFrame(new Error().stack);
                if (frame !== null) {
                    fs.writeFileSync(exitFile, JSON.stringify({ code: code === undefined ? null : code, ...frame }));
                }
            } catch (error) {
                // The plan reports the exit without a line.
            }
        }
        return exit.apply(process, arguments);
    };
}

try {
    rememberExits();
} catch (error) {
    // process.exit stays as Node made it.
}

try {
    install();
} catch (error) {
    // The SDK is not laid out as expected: run the program exactly as Pulumi would.
}
