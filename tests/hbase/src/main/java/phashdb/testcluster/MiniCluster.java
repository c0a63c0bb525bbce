package phashdb.testcluster;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.hbase.HBaseConfiguration;
import org.apache.hadoop.hbase.HBaseTestingUtility;
import org.apache.hadoop.hbase.MiniHBaseCluster;
import org.apache.hadoop.hbase.ServerName;
import org.apache.hadoop.hbase.RegionMetrics;
import org.apache.hadoop.hbase.StartMiniClusterOption;
import org.apache.hadoop.hbase.TableName;
import org.apache.hadoop.hbase.client.Admin;
import org.apache.hadoop.hbase.client.CompactionState;
import org.apache.hadoop.hbase.regionserver.HRegionServer;
import org.apache.hadoop.hbase.thrift.ThriftServer;
import org.apache.thrift.server.TServer;

/**
 * A real HBase for tests, in one JVM: a mini ZooKeeper, one HMaster and N region servers
 * (default 3) on the local filesystem, plus the Thrift1 gateway (what happybase speaks) and the
 * Thrift2 gateway, all bound to 127.0.0.1 on free ports.
 *
 * <p>Usage: {@code MiniCluster <ports.json> [--data DIR] [--regionservers N] [--no-thrift2]
 * [--thrift-read-timeout-ms MS] [--exit-on-stdin-eof]}. When everything serves, the ports file is written atomically
 * (tmp + rename). The JVM then runs until SIGTERM/SIGINT (clean shutdown via a shutdown hook) or,
 * with --exit-on-stdin-eof, until standard input closes.
 */
public final class MiniCluster {
  private static final String LOOPBACK = "127.0.0.1";

  private MiniCluster() {
  }

  public static void main(String[] args) {
    try {
      run(args);
    } catch (Throwable e) {
      log("startup failed: " + e);
      e.printStackTrace();
      // Non-daemon HBase threads would keep the JVM alive: exit (runs the shutdown hook).
      System.exit(1);
    }
  }

  private static void run(String[] args) throws Exception {
    long t0 = System.nanoTime();
    if (args.length < 1) {
      System.err.println("usage: MiniCluster <ports.json> [--data DIR] [--regionservers N]"
          + " [--rootdir URL] [--no-thrift2] [--exit-on-stdin-eof]");
      System.exit(2);
    }
    Path portsFile = Path.of(args[0]).toAbsolutePath();
    Path dataDir = portsFile.getParent().resolve("data");
    int numRs = 3;
    boolean thrift2 = true;
    boolean exitOnStdinEof = false;
    int readTimeoutMs = (int) TimeUnit.DAYS.toMillis(1);
    String rootDir = null; // hbase.rootdir (and so the WALs under it); default: under dataDir
    for (int i = 1; i < args.length; i++) {
      switch (args[i]) {
        case "--data":
          dataDir = Path.of(args[++i]).toAbsolutePath();
          break;
        case "--regionservers":
          numRs = Integer.parseInt(args[++i]);
          break;
        case "--no-thrift2":
          thrift2 = false;
          break;
        case "--thrift-read-timeout-ms":
          readTimeoutMs = Integer.parseInt(args[++i]);
          break;
        case "--rootdir":
          rootDir = args[++i];
          break;
        case "--exit-on-stdin-eof":
          exitOnStdinEof = true;
          break;
        default:
          throw new IllegalArgumentException("unknown argument " + args[i]);
      }
    }
    Files.createDirectories(dataDir);
    // HBaseTestingUtility puts its data (ZooKeeper snapshots, hbase.rootdir, WALs) under this.
    System.setProperty("test.build.data.basedirectory", dataDir.toString());

    Configuration conf = HBaseConfiguration.create();
    // Loopback only.
    conf.set("hbase.master.ipc.address", LOOPBACK);
    conf.set("hbase.regionserver.ipc.address", LOOPBACK);
    conf.set("hbase.zookeeper.quorum", "localhost");
    conf.setInt("hbase.master.info.port", -1);
    conf.setInt("hbase.regionserver.info.port", -1);
    // Local filesystem, no HDFS: it has no hflush/hsync capability, so do not insist on it.
    conf.set("fs.defaultFS", "file:///");
    conf.setBoolean("hbase.unsafe.stream.capability.enforce", false);
    // FSHLog: the classic WAL writer (the async one reaches into the HDFS client's internals).
    conf.set("hbase.wal.provider", "filesystem");
    // All region servers share one heap: keep each one's caches small.
    conf.setFloat("hfile.block.cache.size", 0.1f);
    conf.setFloat("hbase.regionserver.global.memstore.size", 0.1f);
    conf.setInt("hbase.regionserver.handler.count", 10);
    conf.setInt("hbase.master.handler.count", 10);
    // Balance often so regions (e.g. after splits) stay spread over all region servers.
    conf.setBoolean("hbase.balancer.tablesOnMaster", false);
    conf.setInt("hbase.balancer.period", 10_000);
    // Remove store files a compaction replaced within seconds (default: 2 min), so the data
    // folder's size after a major compaction is the table's size.
    conf.setInt("hbase.hfile.compaction.discharger.interval", 3_000);

    HBaseTestingUtility util = rootDir == null ? new HBaseTestingUtility(conf)
        : new HBaseTestingUtility(conf) {
          // The testing utility would put hbase.rootdir in a fresh test-data/UUID folder of
          // the filesystem: keep the one asked for.
          @Override
          public org.apache.hadoop.fs.Path createRootDir(boolean create) throws IOException {
            org.apache.hadoop.fs.Path root = new org.apache.hadoop.fs.Path(
                getConfiguration().get("hbase.rootdir"));
            org.apache.hadoop.fs.FileSystem fs = root.getFileSystem(getConfiguration());
            fs.mkdirs(root);
            org.apache.hadoop.hbase.util.FSUtils.setVersion(fs, root);
            return root;
          }
        };
    if (rootDir != null) {
      // Root dir, WALs and store files in that (HDFS) filesystem, which can hflush/hsync: the
      // WAL insists on it, as in production. Set after the testing utility's constructor,
      // which points it at the local filesystem. fs.defaultFS stays file:///, the servers set
      // it to the root dir's filesystem themselves: were it HDFS already, the mini cluster
      // would run each region server as a user of its own ("root.hfs.N", in the group
      // "supergroup" only for a NameNode in this JVM), which the test NameNode refuses writes.
      conf.set("hbase.rootdir", rootDir);
      conf.setBoolean("hbase.unsafe.stream.capability.enforce", true);
    }
    List<ThriftServer> thriftServers = new ArrayList<>();
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      log("shutting down");
      for (ThriftServer ts : thriftServers) {
        try {
          ts.stop();
        } catch (Throwable e) {
          log("thrift stop failed: " + e);
        }
      }
      try {
        util.shutdownMiniHBaseCluster();
      } catch (Throwable e) {
        log("hbase shutdown failed: " + e);
      }
      try {
        util.shutdownMiniZKCluster();
      } catch (Throwable e) {
        log("zk shutdown failed: " + e);
      }
      try {
        Files.deleteIfExists(portsFile);
      } catch (IOException e) {
        // ignore
      }
      stopped.countDown();
      log("shut down");
    }, "phashdb-minicluster-shutdown"));

    util.startMiniZKCluster();
    int zkPort = util.getZkCluster().getClientPort();
    log("zookeeper on port " + zkPort);

    MiniHBaseCluster cluster = util.startMiniHBaseCluster(StartMiniClusterOption.builder()
        .numMasters(1).numRegionServers(numRs).build());
    cluster.waitForActiveAndReadyMaster(120_000);
    // Wait until all region servers have checked in with the master.
    long deadline = System.currentTimeMillis() + 120_000;
    while (util.getAdmin().getRegionServers().size() < numRs) {
      if (System.currentTimeMillis() > deadline) {
        throw new IllegalStateException("region servers did not all check in");
      }
      Thread.sleep(200);
    }
    util.getAdmin().balancerSwitch(true, true);
    ServerName master = cluster.getMaster().getServerName();
    log("hbase up: master " + master + ", region servers "
        + util.getAdmin().getRegionServers());

    int thriftPort = freePort();
    thriftServers.add(startThrift(new ThriftServer(copy(conf)), "thrift1", thriftPort,
        readTimeoutMs));
    int thrift2Port = -1;
    if (thrift2) {
      thrift2Port = freePort();
      thriftServers.add(startThrift(new org.apache.hadoop.hbase.thrift2.ThriftServer(copy(conf)),
          "thrift2", thrift2Port, readTimeoutMs));
    }
    int controlPort = startControl(util, cluster, conf, thriftServers, thriftPort, thrift2Port,
        readTimeoutMs);
    // TBoundedThreadPoolServer never reports isServing(): wait for the tserver object, then for
    // the port to accept connections.
    for (ThriftServer ts : thriftServers) {
      waitCreated(ts);
    }
    waitPort(thriftPort);
    if (thrift2) {
      waitPort(thrift2Port);
    }

    double startup = (System.nanoTime() - t0) / 1e9;
    StringBuilder rs = new StringBuilder();
    for (ServerName sn : util.getAdmin().getRegionServers()) {
      rs.append(rs.length() == 0 ? "" : ", ").append('"').append(sn).append('"');
    }
    String json = "{\n"
        + "  \"host\": \"" + LOOPBACK + "\",\n"
        + "  \"thrift_port\": " + thriftPort + ",\n"
        + "  \"thrift2_port\": " + (thrift2 ? Integer.toString(thrift2Port) : "null") + ",\n"
        + "  \"zk_port\": " + zkPort + ",\n"
        + "  \"control_port\": " + controlPort + ",\n"
        + "  \"data_dir\": \"" + dataDir + "\",\n"
        + "  \"rootdir\": \"" + conf.get("hbase.rootdir") + "\",\n"
        + "  \"master_info\": \"" + master + "\",\n"
        + "  \"region_servers\": [" + rs + "],\n"
        + "  \"hbase_version\": \"" + org.apache.hadoop.hbase.util.VersionInfo.getVersion()
        + "\",\n"
        + "  \"startup_seconds\": " + String.format("%.1f", startup) + ",\n"
        + "  \"pid\": " + ProcessHandle.current().pid() + "\n"
        + "}\n";
    Path tmp = portsFile.resolveSibling(portsFile.getFileName() + ".tmp");
    Files.writeString(tmp, json, StandardCharsets.UTF_8);
    Files.move(tmp, portsFile, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    log("READY in " + String.format("%.1f", startup) + "s: " + json.replace('\n', ' '));

    if (exitOnStdinEof) {
      InputStream in = System.in;
      byte[] buf = new byte[256];
      while (in.read(buf) >= 0) {
        // discard
      }
      log("stdin closed");
      System.exit(0);
    }
    stopped.await();
  }

  /**
   * A line protocol on a loopback port (control_port in the ports file), for tests and
   * benchmarks: {@code flush T}, {@code compact T} (major, waits until done), {@code balance},
   * {@code metrics T} (per region server: regions of T, their read and write requests),
   * {@code blockcache} (per region server: bytes of data blocks in its cache),
   * {@code abort-rs N}, {@code start-rs}, {@code restart-thrift}. Each answers one line,
   * "ok ..." or "error ...".
   */
  private static int startControl(HBaseTestingUtility util, MiniHBaseCluster cluster,
      Configuration conf, List<ThriftServer> thriftServers, int thriftPort, int thrift2Port,
      int readTimeoutMs) throws IOException {
    ServerSocket server = new ServerSocket(0, 16, InetAddress.getByName(LOOPBACK));
    Thread t = new Thread(() -> {
      while (true) {
        try (Socket s = server.accept();
            BufferedReader in = new BufferedReader(
                new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8));
            PrintWriter out = new PrintWriter(s.getOutputStream(), true, StandardCharsets.UTF_8)) {
          String line;
          while ((line = in.readLine()) != null) {
            String reply;
            try {
              reply = "ok " + control(util, cluster, conf, thriftServers, thriftPort, thrift2Port,
                  readTimeoutMs, line.trim().split("\\s+"));
            } catch (Throwable e) {
              reply = "error " + e.toString().replace('\n', ' ');
            }
            log("control: " + line + " -> " + reply);
            out.println(reply);
          }
        } catch (IOException e) {
          log("control connection: " + e);
        }
      }
    }, "phashdb-control");
    t.setDaemon(true);
    t.start();
    return server.getLocalPort();
  }

  private static String control(HBaseTestingUtility util, MiniHBaseCluster cluster,
      Configuration conf, List<ThriftServer> thriftServers, int thriftPort, int thrift2Port,
      int readTimeoutMs, String[] cmd) throws Exception {
    Admin admin = util.getAdmin();
    switch (cmd[0]) {
      case "flush":
        admin.flush(TableName.valueOf(cmd[1]));
        return "";
      case "compact": {
        TableName table = TableName.valueOf(cmd[1]);
        admin.majorCompact(table);
        Thread.sleep(1000);
        long deadline = System.currentTimeMillis() + 1_800_000;
        while (admin.getCompactionState(table) != CompactionState.NONE) {
          if (System.currentTimeMillis() > deadline) {
            throw new IllegalStateException("compaction not done in 30 min");
          }
          Thread.sleep(500);
        }
        Thread.sleep(8_000);  // the discharger removes the replaced files
        return "";
      }
      case "balance":
        return Boolean.toString(admin.balance());
      case "metrics": {
        TableName table = TableName.valueOf(cmd[1]);
        StringBuilder sb = new StringBuilder("{");
        for (ServerName sn : admin.getRegionServers()) {
          long regions = 0;
          long reads = 0;
          long writes = 0;
          for (RegionMetrics m : admin.getRegionMetrics(sn, table)) {
            regions++;
            reads += m.getReadRequestCount();
            writes += m.getWriteRequestCount();
          }
          sb.append(sb.length() == 1 ? "" : ", ").append('"').append(sn.getHostname()).append(':')
              .append(sn.getPort()).append("\": {\"regions\": ").append(regions)
              .append(", \"reads\": ").append(reads).append(", \"writes\": ").append(writes)
              .append('}');
        }
        return sb.append('}').toString();
      }
      case "blockcache": {
        // bytes in each live region server's block cache (all tables)
        StringBuilder sb = new StringBuilder("{");
        for (org.apache.hadoop.hbase.util.JVMClusterUtil.RegionServerThread t
            : cluster.getLiveRegionServerThreads()) {
          HRegionServer rs = t.getRegionServer();
          long bytes = rs.getBlockCache().map(c -> c.getCurrentDataSize()).orElse(0L);
          sb.append(sb.length() == 1 ? "" : ", ").append('"').append(rs.getServerName().getHostname())
              .append(':').append(rs.getServerName().getPort()).append("\": ").append(bytes);
        }
        return sb.append('}').toString();
      }
      case "abort-rs": {
        int i = Integer.parseInt(cmd[1]);
        HRegionServer rs = cluster.getRegionServer(i);
        String name = rs.getServerName().toString();
        cluster.abortRegionServer(i);
        cluster.waitOnRegionServer(i);
        return name;
      }
      case "start-rs":
        return cluster.startRegionServer().getRegionServer().getServerName().toString();
      case "restart-thrift": {
        for (ThriftServer ts : thriftServers) {
          ts.stop();
        }
        Thread.sleep(500);
        thriftServers.clear();
        thriftServers.add(startThrift(new ThriftServer(copy(conf)), "thrift1", thriftPort,
            readTimeoutMs));
        if (thrift2Port > 0) {
          thriftServers.add(startThrift(
              new org.apache.hadoop.hbase.thrift2.ThriftServer(copy(conf)), "thrift2",
              thrift2Port, readTimeoutMs));
        }
        for (ThriftServer ts : thriftServers) {
          waitCreated(ts);
        }
        waitPort(thriftPort);
        if (thrift2Port > 0) {
          waitPort(thrift2Port);
        }
        return "";
      }
      default:
        throw new IllegalArgumentException("unknown command " + cmd[0]);
    }
  }

  private static Configuration copy(Configuration conf) {
    Configuration c = new Configuration(conf);
    c.set("hbase.regionserver.thrift.ipaddress", LOOPBACK);
    c.setInt("hbase.thrift.info.port", -1);
    c.setInt("hbase.thrift.minWorkerThreads", 4);
    return c;
  }

  private static ThriftServer startThrift(ThriftServer ts, String name, int port,
      int readTimeoutMs) {
    // run() blocks in serve(): give each gateway its own thread. -t is the socket read timeout
    // (hbase.thrift.server.socket.read.timeout, default 60000 ms): a client connection idle for
    // longer is closed by the server, which breaks pooled idle happybase connections.
    String[] args = {"-b", LOOPBACK, "-p", Integer.toString(port), "-threadpool",
        "-t", Integer.toString(readTimeoutMs)};
    Thread t = new Thread(() -> {
      try {
        ts.run(args);
        log(name + " stopped serving");
      } catch (Throwable e) {
        log(name + " failed: " + e);
        e.printStackTrace();
        Runtime.getRuntime().halt(3);
      }
    }, "phashdb-" + name);
    t.setDaemon(true);
    t.start();
    log("starting " + name + " on " + LOOPBACK + ":" + port);
    return ts;
  }

  private static void waitCreated(ThriftServer ts) throws InterruptedException {
    long deadline = System.currentTimeMillis() + 60_000;
    while (true) {
      TServer s = ts.getTserver();
      if (s != null) {
        return;
      }
      if (System.currentTimeMillis() > deadline) {
        throw new IllegalStateException("thrift server did not start serving");
      }
      Thread.sleep(100);
    }
  }

  private static void waitPort(int port) throws InterruptedException {
    long deadline = System.currentTimeMillis() + 60_000;
    while (true) {
      try (Socket s = new Socket()) {
        s.connect(new InetSocketAddress(LOOPBACK, port), 1000);
        return;
      } catch (IOException e) {
        if (System.currentTimeMillis() > deadline) {
          throw new IllegalStateException("port " + port + " not accepting", e);
        }
        Thread.sleep(100);
      }
    }
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getByName(LOOPBACK))) {
      s.setReuseAddress(true);
      return s.getLocalPort();
    }
  }

  private static void log(String msg) {
    System.err.println("[phashdb-minicluster] " + msg);
    System.err.flush();
  }
}
