<?xml version="1.0"?>
<!--
  Moves the cloud-init cdrom that terraform-provider-libvirt 0.8.1 writes from IDE to virtio-scsi.

  The provider always attaches the CloudInitDisk as <target dev='hdd' bus='ide'/> with
  <serial>cloudinit</serial> (libvirt/domain.go:204-219). Only the x86 i440fx 'pc' machine has an
  IDE controller; libvirt refuses the disk on aarch64 'virt' (and on x86 'q35') at define time:
  "IDE controllers are unsupported for this QEMU binary or machine type".

  The provider runs this stylesheet with xsltproc on the XML it generated, right before
  DomainDefineXML (libvirt/resource_libvirt_domain.go:579-584, libvirt/utils_xslt.go:84-89).
  The serial stays, because the provider recognises the cloud-init disk by it when it reads the
  domain back (libvirt/resource_libvirt_domain.go:895-899).
-->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output method="xml" indent="yes"/>

  <!-- Everything else is copied as it is. -->
  <xsl:template match="@*|node()">
    <xsl:copy>
      <xsl:apply-templates select="@*|node()"/>
    </xsl:copy>
  </xsl:template>

  <!-- An IDE cdrom goes to the SCSI bus, named after the SCSI disks the domain already has
       (the provider names those sda, sdb, ... in order: libvirt/domain.go:497-511). -->
  <xsl:template match="/domain/devices/disk[@device='cdrom']/target[@bus='ide']">
    <xsl:variable name="taken" select="count(/domain/devices/disk/target[@bus='scsi'])
                                       + count(../preceding-sibling::disk[@device='cdrom']/target[@bus='ide'])"/>
    <target dev="sd{substring('abcdefghijklmnopqrstuvwxyz', $taken + 1, 1)}" bus="scsi"/>
  </xsl:template>

  <!-- That bus needs a virtio-scsi controller, unless the domain has a SCSI controller already
       (the provider adds one for disks with scsi = true: libvirt/domain.go:630-636). -->
  <xsl:template match="/domain/devices[disk[@device='cdrom']/target[@bus='ide']][not(controller[@type='scsi'])]">
    <xsl:copy>
      <xsl:apply-templates select="@*|node()"/>
      <controller type="scsi" model="virtio-scsi"/>
    </xsl:copy>
  </xsl:template>
</xsl:stylesheet>
